"""Search, a part of the store: full text over every item's text answer, for `pipe search`.

The index (`search_index`, FTS5, made by migration 012_search in schema.py) holds one
document per item whose answer is text; the triggers there keep it in step as answers are
written, replaced and forgotten, so a search does no index work: one ranked query (bm25),
then, for the hits shown only, where each file is now (pipe's own renames, from the
journal) and a snippet around the matches. A file that is no longer anywhere pipe knows is
skipped: a hit is something to open. Picture answers are not text and are not indexed.
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

SNIPPET_TOKENS = 16  # words around the matches (FTS5 allows at most 64)
ELLIPSIS = "…"
FETCH = 64  # ranked candidates read at a time: most searches need one read

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
        where = where or Where()
        chosen: dict[tuple[str, str], tuple[Any, ...]] = {}
        for item_id, rank, recipe, recorded, updated in self._ranked(query, where):
            now = self.where_now(recorded)
            if now is None or (where.under and not _below(now, where.under)):
                continue
            chosen.setdefault((now, recipe), (item_id, rank, recorded, updated))
            if len(chosen) >= limit:
                break
        texts = self._snippets(query, [row[0] for row in chosen.values()])
        return [
            Hit(now, recipe, rank, *texts[item_id], recorded, updated)
            for (now, recipe), (item_id, rank, recorded, updated) in chosen.items()
            if item_id in texts
        ]

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

    def _ranked(self, query: str, where: Where) -> Iterator[tuple[Any, ...]]:
        """(item id, rank, recipe, path, updated) of every match, best first, read lazily:
        FTS5 ranks the matches, the items are read only as far as the caller goes."""
        sql, params = _ranked_sql(query, where)
        cursor = self.connections.conn.cursor()
        try:
            with _readable(query):
                cursor.execute(sql, params)
                rows = cursor.fetchmany(FETCH)
            while rows:
                yield from rows
                with _readable(query):
                    rows = cursor.fetchmany(FETCH)
        finally:
            cursor.close()

    def _snippets(
        self, query: str, ids: list[int]
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
        params = (opening, closing, ELLIPSIS, SNIPPET_TOKENS, query, *ids)
        with _readable(query):
            rows = self.connections.conn.execute(sql, params).fetchall()
        return {row[0]: (_marked(row[1] or "", opening, closing), row[2] or "") for row in rows}


def _ranked_sql(query: str, where: Where) -> tuple[str, dict[str, Any]]:
    conditions, params = ["search_index MATCH :query"], {"query": query}
    if where.recipe is not None:
        conditions.append("i.recipe = :recipe")
        params["recipe"] = where.recipe
    if where.under is not None:
        folder = where.under if where.under.endswith(os.sep) else where.under + os.sep
        low, high = folder_range(folder)
        conditions.append("(i.path = :under OR (i.path >= :low AND i.path < :high))")
        params.update(under=where.under, low=low, high=high)
    if where.since is not None:
        conditions.append("i.updated >= :since")
        params["since"] = where.since
    sql = (
        "SELECT s.rowid, s.rank, i.recipe, i.path, i.updated FROM search_index s"
        f" JOIN items i ON i.id = s.rowid WHERE {' AND '.join(conditions)}"
        " ORDER BY s.rank, i.path"
    )
    return sql, params


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
