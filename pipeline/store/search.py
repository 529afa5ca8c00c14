"""Search, a part of the store: full text over every item's text answer, for `pipe search`.

The index (`search_index`, FTS5, made by migration 012_search in schema.py) holds one
document per item whose answer is text; the triggers there keep it in step as answers are
written, replaced and forgotten, so a search does no index work: ranked queries (bm25) over
windows of the newest matches, then, for the hits shown only, where each file is now
(pipe's own renames, from the journal) and a snippet around the matches. A file that is no
longer anywhere pipe knows is skipped: a hit is something to open. Picture answers are not
text and are not indexed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.errors import UsageError
from pipeline.store.connection import Connections
from pipeline.store.folder_rows import folder_range
from pipeline.store.journal import Journal
from pipeline.store.schema import SEARCH_FLUSH

SNIPPET_TOKENS = 16  # words around the matches (FTS5 allows at most 64)
ELLIPSIS = "…"
WINDOW = 10_000  # matches ranked at once (see Search._ranked)
FETCH = 32  # ranked rows read at a time: most searches need one read
FLUSH_EVERY = 64  # queued documents a run adds at once (see schema.py, 012_search)

# SQLite's words for a query FTS5 could not read (the rest are the database's problems).
_QUERY_ERRORS = ("fts5:", "unterminated string", "no such column", "unknown special query")
_SPACE = re.compile(r"\s+")


class BadQuery(UsageError):
    """A query FTS5 cannot read: one line naming the problem, exit 2."""


@dataclass(frozen=True)
class Where:
    """What a search is narrowed to: one recipe's answers, files below a folder (absolute,
    as the store keys them), items finished at or after a time (UTC, ISO 8601)."""

    recipe: str | None = None
    under: str | None = None
    since: str | None = None


@dataclass(frozen=True)
class Hit:
    path: str  # where the file is now, after pipe's renames
    recipe: str
    rank: float  # bm25: lower is a better match
    snippet: tuple[tuple[str, bool], ...]  # the answer around the matches: (text, is a match)
    answer: str
    recorded: str  # the path the item was recorded under
    updated: str  # when the item was finished (UTC, ISO 8601)

    def snippet_text(self, open_mark: str = "[", close_mark: str = "]") -> str:
        return "".join(f"{open_mark}{t}{close_mark}" if hit else t for t, hit in self.snippet)


class Search:
    def __init__(self, connections: Connections, journal: Journal) -> None:
        self.connections = connections
        self.journal = journal

    def search(self, query: str, where: Where | None = None, limit: int = 20) -> list[Hit]:
        """The best `limit` items whose answer matches `query` (FTS5 syntax), best first;
        one hit per file and recipe, at the file's present name."""
        if not query.strip():
            raise BadQuery("an empty search query: give a word to look for")
        self.flush()  # what a run still at work (or killed) has queued: a batch at most
        where = where or Where()
        conditions, params = _conditions(query, where)
        chosen: dict[tuple[str, str], tuple[Any, ...]] = {}
        for item_id, rank, recipe, recorded, updated in self._ranked(conditions, params):
            now = self.where_now(recorded)
            if now is None or (where.under and not _below(now, where.under)):
                continue
            chosen.setdefault((now, recipe), (item_id, rank, recorded, updated))
            if len(chosen) >= limit:
                break
        texts = self._snippets(params, [row[0] for row in chosen.values()])
        return [
            Hit(now, recipe, rank, *texts[item_id], recorded, updated)
            for (now, recipe), (item_id, rank, recorded, updated) in chosen.items()
            if item_id in texts
        ]

    def flush(self) -> None:
        """Add the documents still queued to the index (a run adds them FLUSH_EVERY at a
        time, and the rest when its store closes). A read-only database is searched as its
        index stands."""
        conn = self.connections.conn
        if conn.execute("SELECT 1 FROM search_pending LIMIT 1").fetchone() is None:
            return
        try:
            with self.connections.transaction() as c:
                flush(c)
        except sqlite3.OperationalError as e:
            if "readonly" not in str(e):
                raise

    def where_now(self, path: str) -> str | None:
        """Where the file recorded at `path` is now: its renames by pipe replayed in order
        (an undone one put it back), else any name pipe knew it by that still exists."""
        names, moves = self.journal.names_of(path)
        now = path
        for _run, old, new, state, *_ in moves:
            if state == "applied" and old == now:
                now = new
        if os.path.lexists(now):
            return now
        return next((name for name in sorted(names) if os.path.lexists(name)), None)

    def _ranked(self, conditions: list[str], params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """(item id, bm25, recipe, path, updated) of the matches, best first within windows
        of the WINDOW newest (highest item id) matches that pass the filters, newer windows
        first, read lazily. Ranking every match costs ~1 us each, and a common word matches
        most of a library: a window bounds a search's cost whatever the library's size,
        and ranks every query matching at most WINDOW items exactly."""
        high, count = None, WINDOW
        while count >= WINDOW:
            bounds = {**params, "high": high, "window": WINDOW}
            count = 0
            for row in self._window(conditions, bounds):
                count, high = row[2], row[3]
                yield (row[0], row[1], *row[4:])
            if not count:  # no match in this window passed the filters: its extent
                with _readable(params["text"]):
                    sql = _EXTENT.format(where=_where(conditions[:1], bounds))
                    count, high = self.connections.conn.execute(sql, bounds).fetchone()

    def _window(self, conditions: list[str], params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """One window's matches that pass the filters, best first, each with the window's
        size and lowest id (the next window is below it): one pass, in which FTS5 walks its
        doclists from the newest id and stops at WINDOW, ranking only those. Python reads
        only as many as the caller takes, and reads an item's row only then when no filter
        needed it for every match."""
        conn = self.connections.conn
        filtered = len(conditions) > 1
        window = _WINDOW.format(where=_where(conditions[:1], params))
        sql = (
            f"SELECT w.*, i.recipe, i.path, i.updated FROM ({window}) AS w"
            f" JOIN items i ON i.id = w.id WHERE {' AND '.join(conditions[1:])}"
            " ORDER BY w.score, w.id DESC"
            if filtered
            else f"{window} ORDER BY score, id DESC"
        )
        cursor = conn.cursor()
        try:
            with _readable(params["text"]):
                cursor.execute(sql, params)
                rows = cursor.fetchmany(FETCH)
            while rows:
                for row in rows:
                    if filtered:
                        yield row
                    elif item := conn.execute(_ITEM, (row[0],)).fetchone():
                        yield (*row, *item)
                with _readable(params["text"]):
                    rows = cursor.fetchmany(FETCH)
        finally:
            cursor.close()

    def _snippets(
        self, params: dict[str, Any], ids: list[int]
    ) -> dict[int, tuple[tuple[tuple[str, bool], ...], str]]:
        """Each shown item's snippet and whole answer. The matches are marked with a
        random pair no answer can contain, so marks and answer text never mix."""
        if not ids:
            return {}
        mark = secrets.token_hex(8)
        opening, closing = f"<{mark}>", f"</{mark}>"
        sql = (
            "SELECT rowid, snippet(search_index, 0, ?, ?, ?, ?), answer FROM search_index"
            f" WHERE search_index MATCH ? AND rowid IN ({', '.join('?' * len(ids))})"
        )
        values = (opening, closing, ELLIPSIS, SNIPPET_TOKENS, params["query"], *ids)
        with _readable(params["text"]):
            rows = self.connections.conn.execute(sql, values).fetchall()
        return {row[0]: (_marked(row[1] or "", opening, closing), row[2] or "") for row in rows}


_ITEM = "SELECT recipe, path, updated FROM items WHERE id = ?"
# The WINDOW newest matches (FTS5 walks its doclists from the newest id and stops there),
# ranked, each with the window's size and lowest id.
_NEWEST = (
    "SELECT s.rowid AS id{score} FROM search_index s WHERE {where}"
    " ORDER BY s.rowid DESC LIMIT :window"
)
_WINDOW = (
    "SELECT id, score, count(*) OVER () AS n, min(id) OVER () AS floor FROM ("
    + _NEWEST.format(score=", bm25(search_index, 1.0, 0.0, 0.0) AS score", where="{where}")
    + ")"
)
_EXTENT = "SELECT count(*), min(id) FROM (" + _NEWEST.format(score="", where="{where}") + ")"


def flush(c: sqlite3.Connection, at_least: int = 1) -> None:
    """Inside the caller's transaction: add the queued documents to the index, when at
    least `at_least` are queued (one segment for the batch)."""
    queued = c.execute(
        "SELECT count(*) FROM (SELECT 1 FROM search_pending LIMIT ?)", (at_least,)
    ).fetchone()[0]
    if queued and queued >= at_least:
        for statement in SEARCH_FLUSH:
            c.execute(statement)


def _conditions(query: str, where: Where) -> tuple[list[str], dict[str, Any]]:
    """The SQL conditions of a search and their values. The query is held to the answers
    (the index holds each item's recipe and path too). --recipe is asked of the index as
    one token, --under as the words of its last folder's name (FTS5's bm25 counts every
    phrase's documents, so a phrase of the whole path, common words, would cost a scan of
    the index); the items it gives are then checked exactly."""
    match = [f"answer : ({query})"]
    if where.recipe is not None:
        match.append(f'recipe : "{where.recipe.encode("utf-8", "surrogateescape").hex()}"')
    folder = os.path.basename(where.under.rstrip(os.sep)) if where.under else ""
    if any(char.isalnum() for char in folder):  # its words: a few items, and cheap to rank
        match.append(f"place : {_phrase(folder)}")
    conditions = ["search_index MATCH :query"]
    params: dict[str, Any] = {"query": " AND ".join(match), "text": query}
    if where.recipe is not None:
        conditions.append("i.recipe = :recipe")
        params["recipe"] = where.recipe
    if where.under is not None:
        folder = where.under if where.under.endswith(os.sep) else where.under + os.sep
        low, high = folder_range(folder)
        conditions.append("(i.path = :under OR (i.path >= :folder AND i.path < :after))")
        params.update(under=where.under, folder=low, after=high)
    if where.since is not None:
        conditions.append("i.updated >= :since")
        params["since"] = where.since
    return conditions, params


def _phrase(text: str) -> str:
    """Text as one FTS5 phrase: tokenized as the index was, never read as syntax."""
    return '"' + text.replace('"', '""') + '"'


def _where(conditions: list[str], bounds: dict[str, Any]) -> str:
    """The conditions, and the window's upper bound if set (FTS5 seeks to it)."""
    return " AND ".join(conditions + (["s.rowid < :high"] if bounds.get("high") else []))


@contextlib.contextmanager
def _readable(query: str) -> Iterator[None]:
    """A query FTS5 cannot read becomes a BadQuery; the database's own errors pass."""
    try:
        yield
    except sqlite3.OperationalError as e:
        message = str(e)
        if not message.startswith(_QUERY_ERRORS):
            raise
        raise BadQuery(f"cannot read the search query {query!r}: {message}") from None


def _marked(text: str, opening: str, closing: str) -> tuple[tuple[str, bool], ...]:
    """A snippet as (text, is a match) pieces, its white space made single spaces (an
    answer's line breaks would break the one line a hit is shown on)."""
    first, *rest = text.split(opening)
    pieces = [(first, False)]
    for part in rest:
        match, _, after = part.partition(closing)
        pieces += [(match, True), (after, False)]
    return tuple((_SPACE.sub(" ", t), hit) for t, hit in pieces if t)


def _below(path: str, under: str) -> bool:
    folder = under if under.endswith(os.sep) else under + os.sep
    return path == under or path.startswith(folder)
