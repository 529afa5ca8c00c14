"""Items and claims, a part of the store: one row per (recipe, file) saying what became of
it, and the claims that keep two runs over the same files apart. An item being processed
has a claim (recipe, path and the recipe's ask_key, so runs of differently set recipes
never block each other) held by its run, and a claim is only taken over when that run is
gone (ended, its process dead, or silent for longer than STALE_SECONDS)."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from pipeline.answers import Answer
from pipeline.store.answer_cache import AnswerCache, answer_from_row
from pipeline.store.connection import Connections, now_iso
from pipeline.store.folder_rows import folder_range
from pipeline.store.history import History
from pipeline.store.runs import Runs
from pipeline.store.search import FLUSH_EVERY, flush

# The columns of `items` that make an ItemRow, in its field order.
_ITEM_COLUMNS = "status, size, mtime_ns, hash, ask_key, fingerprint, run_id, reason"


class ItemRow(NamedTuple):  # a tuple: made per file of a re-check, so made cheaply
    status: str
    size: int
    mtime_ns: int
    hash: str | None
    ask_key: str | None
    fingerprint: str | None
    run_id: int | None
    reason: str | None

    def is_finished(self, size: int, mtime_ns: int, ask_key: str) -> bool:
        """Done (or skipped for a reason) with this very file and recipe: nothing to do."""
        return (
            self.status in ("done", "skipped")
            and self.size == size
            and self.mtime_ns == mtime_ns
            and self.ask_key == ask_key
        )


class FileRow(NamedTuple):
    """What the store holds about one file for a recipe: its item and the item's answer,
    and the digest of what pipe wrote there if pipe wrote it (then it is no input)."""

    item: ItemRow | None
    answer: Answer | None
    output: str | None


# A folder's items with their answers, and what pipe wrote there: each one ordered pass
# over its table's range (two range reads instead of a lookup in outputs per item).
_IN_FOLDER = "path >= :low AND path < :high AND instr(substr(path, :cut), :sep) = 0"
_ITEMS_IN_FOLDER = f"""
SELECT i.path, {", ".join("i." + c.strip() for c in _ITEM_COLUMNS.split(","))},
    c.answer, c.kind
FROM items i LEFT JOIN cache c ON c.fingerprint = i.fingerprint
WHERE i.recipe = :recipe AND {_IN_FOLDER.replace("path", "i.path")}
ORDER BY i.path LIMIT :limit
"""
_OUTPUTS_IN_FOLDER = (
    f"SELECT path, digest FROM outputs WHERE {_IN_FOLDER} ORDER BY path LIMIT :limit"
)


class Items:
    def __init__(
        self, connections: Connections, runs: Runs, cache: AnswerCache, history: History
    ) -> None:
        self.connections = connections
        self.runs = runs
        self.cache = cache
        self.history = history

    def item_and_answer(self, recipe: str, path: str) -> tuple[ItemRow | None, Answer | None]:
        """The item's row and its cached final answer, in one query (the resume path)."""
        row = self.connections.conn.execute(
            f"SELECT {_ITEM_COLUMNS}, c.answer, c.kind FROM items i"
            " LEFT JOIN cache c USING (fingerprint) WHERE i.recipe = ? AND i.path = ?",
            (recipe, path),
        ).fetchone()
        return (ItemRow(*row[:8]), answer_from_row(row[8], row[9])) if row else (None, None)

    def files_in_folder(
        self, recipe: str, folder: str, start: str, limit: int
    ) -> list[tuple[str, FileRow]]:
        """The FileRow of every file directly in `folder` (ending with a separator) that
        either table knows, from `start` on, in path order, at most `limit`: a re-check
        reads a folder a chunk at a time (FolderRows), in one range read of each table."""
        low, high = folder_range(folder)
        where = {"low": max(low, start), "high": high, "cut": len(folder) + 1, "sep": os.sep}
        where["limit"] = limit
        conn = self.connections.conn
        items = conn.execute(_ITEMS_IN_FOLDER, {"recipe": recipe, **where}).fetchall()
        outputs = dict(conn.execute(_OUTPUTS_IN_FOLDER, where).fetchall())
        if not outputs:  # a folder without sidecars: its items, as read
            return [(r[0], _file_row(r, None)) for r in items]
        # Each list holds its table's first `limit` keys: so the union's first `limit` too.
        by_key = {r[0]: r for r in items}
        keys = sorted(by_key.keys() | outputs.keys())[:limit]
        return [(key, _file_row(by_key.get(key), outputs.get(key))) for key in keys]

    def file_row(self, recipe: str, path: str) -> FileRow:
        """As files_in_folder, for one file."""
        item, answer = self.item_and_answer(recipe, path)
        row = self.connections.conn.execute(
            "SELECT digest FROM outputs WHERE path = ?", (path,)
        ).fetchone()
        return FileRow(item, answer, row[0] if row else None)

    def claim(
        self,
        recipe: str,
        path: str,
        run_id: int,
        size: int,
        mtime_ns: int,
        ask_key: str,
        redo: bool,
    ) -> tuple[str, ItemRow | None]:
        """Take an item for this run. Returns ("claimed", previous row), ("busy", row) when
        another live run holds it for the same recipe and settings (`ask_key`), or
        ("finished", row) when it is already done as it is. The item's row itself is left
        as it was until the run finishes the item."""
        with self.connections.transaction() as c:
            row = c.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE recipe = ? AND path = ?", (recipe, path)
            ).fetchone()
            previous = ItemRow(*row) if row else None
            if previous and not redo and previous.is_finished(size, mtime_ns, ask_key):
                return "finished", previous
            holder = c.execute(
                "SELECT run_id FROM claims WHERE recipe = ? AND path = ? AND ask_key = ?",
                (recipe, path, ask_key),
            ).fetchone()
            if holder and holder[0] != run_id and self.runs.run_alive(holder[0]):
                return "busy", previous
            c.execute(
                "INSERT OR REPLACE INTO claims (recipe, path, ask_key, run_id, claimed)"
                " VALUES (?, ?, ?, ?, ?)",
                (recipe, path, ask_key, run_id, now_iso()),
            )
            c.execute(
                "INSERT INTO items (recipe, path, size, mtime_ns, status, attempts, run_id,"
                " updated) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)"
                " ON CONFLICT (recipe, path) DO NOTHING",
                (recipe, path, size, mtime_ns, run_id, now_iso()),
            )
        return "claimed", previous

    def finish(
        self,
        recipe: str,
        path: str,
        run_id: int,
        *,
        status: str,
        size: int,
        mtime_ns: int,
        hash: str | None,
        ask_key: str,
        fingerprint: str | None,
        reason: str | None,
        attempts: int,
        history: dict[str, Any],
        cache_rows: list[dict[str, Any]],
    ) -> None:
        """Record an item's outcome, its history line and new cache entries in one commit."""
        with self.connections.transaction() as c:
            self.cache.insert(c, cache_rows)
            c.execute(
                "UPDATE items SET status = ?, size = ?, mtime_ns = ?, hash = ?, ask_key = ?,"
                " fingerprint = ?, reason = ?, attempts = attempts + ?, run_id = ?, updated = ?"
                " WHERE recipe = ? AND path = ?",
                (
                    status,
                    size,
                    mtime_ns,
                    hash,
                    ask_key,
                    fingerprint,
                    reason,
                    attempts,
                    run_id,
                    now_iso(),
                    recipe,
                    path,
                ),
            )
            c.execute(
                "DELETE FROM claims WHERE recipe = ? AND path = ? AND run_id = ?",
                (recipe, path, run_id),
            )
            self.history.insert(c, run_id, recipe, path, history)
            flush(c, FLUSH_EVERY)  # the search index, a batch at a time (schema.py, 012)

    def adopt(
        self,
        recipe: str,
        path: str,
        run_id: int,
        size: int,
        mtime_ns: int,
        hash: str | None,
        ask_key: str,
        fingerprint: str | None,
    ) -> None:
        """A renamed file is finished under its new name too (a re-run skips it by stat)."""
        with self.connections.transaction() as c:
            c.execute(
                "INSERT INTO items (recipe, path, size, mtime_ns, hash, ask_key, fingerprint,"
                " status, attempts, run_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'done', 0, ?, ?)"
                " ON CONFLICT (recipe, path) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, hash = excluded.hash, ask_key = excluded.ask_key,"
                " fingerprint = excluded.fingerprint, status = 'done', run_id = excluded.run_id,"
                " updated = excluded.updated",
                (recipe, path, size, mtime_ns, hash, ask_key, fingerprint, run_id, now_iso()),
            )

    def record_untracked(
        self,
        run_id: int,
        recipe: str,
        path: str,
        history: dict[str, Any],
        cache_rows: list[dict[str, Any]],
    ) -> None:
        """History (and cache) for something that is not a tracked file: stdin text, a bad path."""
        with self.connections.transaction() as c:
            self.cache.insert(c, cache_rows)
            self.history.insert(c, run_id, recipe, path, history)

    def rewritten(self, path: str, old: tuple[int, int], new: tuple[int, int]) -> None:
        """pipe rewrote the file at `path` in place (metadata embedded in a photo, its
        pixels checked the same): every recipe's item finished at its old size and time
        stays finished at the new ones, so no recipe redoes the photo for pipe's own write
        (two recipes writing one photo would otherwise redo each other's forever)."""
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE items SET size = ?, mtime_ns = ? WHERE path = ? AND size = ?"
                " AND mtime_ns = ?",
                (*new, path, *old),
            )

    def release(self, recipe: str, path: str, run_id: int) -> None:
        with self.connections.transaction() as c:
            c.execute(
                "DELETE FROM claims WHERE recipe = ? AND path = ? AND run_id = ?",
                (recipe, path, run_id),
            )


def _file_row(r: tuple[Any, ...] | None, output: str | None) -> FileRow:
    if r is None:
        return FileRow(None, None, output)
    return FileRow(ItemRow._make(r[1:9]), answer_from_row(r[9], r[10]), output)
