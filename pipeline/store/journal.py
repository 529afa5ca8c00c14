"""The rename journal, a part of the store (the `renames` table, made by migration 002): a
plan written before any file moves, each move's state as it happens, and what undo and
`pipe show` read back."""

from __future__ import annotations

import os
from typing import Any

from pipeline.paths import display_path
from pipeline.store.connection import Connections, now_iso
from pipeline.store.runs import Runs

Identity = tuple[int, int, int, int]  # device, inode, size, mtime_ns


class Journal:
    def __init__(self, connections: Connections, runs: Runs) -> None:
        self.connections = connections
        self.conn = connections.conn
        self.runs = runs

    def write_plan(self, run_id: int, moves: list[tuple[Any, Identity]]) -> list[int]:
        """Write the whole plan (one transaction) before any file is touched."""
        ids = []
        with self.connections.transaction() as c:
            for move, (dev, ino, size, mtime_ns) in moves:
                cur = c.execute(
                    "INSERT INTO renames (run_id, grp, companion, old_path, new_path, dev, ino,"
                    " size, mtime_ns, state, planned, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?)",
                    (
                        run_id,
                        move.group,
                        int(move.companion),
                        path_to_db(move.old),
                        path_to_db(move.new),
                        dev,
                        ino,
                        size,
                        mtime_ns,
                        now_iso(),
                        now_iso(),
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def mark(self, rename_id: int, state: str, reason: str | None = None) -> None:
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE renames SET state = ?, reason = ?, updated = ? WHERE id = ?",
                (state, reason, now_iso(), rename_id),
            )

    def orphaned(self) -> list[tuple[int, str, str, Identity]]:
        """Planned renames of runs that are no longer alive (killed mid-apply)."""
        rows = self.conn.execute(
            "SELECT id, run_id, old_path, new_path, dev, ino, size, mtime_ns FROM renames"
            " WHERE state = 'planned' ORDER BY id"
        ).fetchall()
        return [
            (r[0], path_from_db(r[2]), path_from_db(r[3]), tuple(r[4:8]))  # type: ignore[misc]
            for r in rows
            if not self.runs.run_alive(r[1])
        ]

    def applied(self, run_id: int) -> list[tuple[int, str, str, Identity]]:
        rows = self.conn.execute(
            "SELECT id, old_path, new_path, dev, ino, size, mtime_ns FROM renames"
            " WHERE run_id = ? AND state = 'applied' ORDER BY id DESC",
            (run_id,),
        ).fetchall()
        return [
            (r[0], path_from_db(r[1]), path_from_db(r[2]), tuple(r[3:7]))  # type: ignore[misc]
            for r in rows
        ]

    def reidentify(self, rename_id: int, now: Identity) -> None:
        """The renamed file's identity after undo put back the bytes pipe renamed (a
        replacement restored through a new inode), so the rename can be undone too."""
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE renames SET dev = ?, ino = ?, size = ?, mtime_ns = ? WHERE id = ?",
                (*now, rename_id),
            )

    def reopen(self, old: str, new: str) -> None:
        """After an undo: the file is back under `old` and not done for any recipe."""
        with self.connections.transaction() as c:
            c.execute("DELETE FROM items WHERE path = ?", (display_path(new),))
            c.execute("UPDATE items SET status = 'pending' WHERE path = ?", (display_path(old),))

    def last_run(self) -> int | None:
        row = self.conn.execute(
            "SELECT MAX(run_id) FROM renames WHERE state = 'applied'"
        ).fetchone()
        return row[0] if row else None

    def last_undone_run(self) -> int | None:
        """The newest run with undone renames (a second `pipe undo` names it)."""
        row = self.conn.execute("SELECT MAX(run_id) FROM renames WHERE state = 'undone'").fetchone()
        return row[0] if row else None

    def has_undone(self, run_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM renames WHERE run_id = ? AND state = 'undone' LIMIT 1", (run_id,)
        ).fetchone()
        return row is not None

    def run_exists(self, run_id: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is not None

    def renamed_by_pipe(self, path: str) -> bool:
        """Whether `path` is the result of an applied (not undone) rename."""
        row = self.conn.execute(
            "SELECT 1 FROM renames WHERE new_path = ? AND state = 'applied' LIMIT 1",
            (path_to_db(path),),
        ).fetchone()
        return row is not None

    def names_of(self, path: str) -> tuple[set[str], list[tuple[Any, ...]]]:
        """Every name the file had through applied (or undone) renames, and those renames
        as (run_id, old, new, state, planned, updated)."""
        start = path_to_db(path)
        seen, frontier, moves = {start}, [start], {}
        while frontier:
            value = frontier.pop()
            for row in self.conn.execute(
                "SELECT id, run_id, old_path, new_path, state, planned, updated FROM renames"
                " WHERE (old_path = ? OR new_path = ?) AND companion = 0"
                " AND state IN ('applied', 'undone')",
                (value, value),
            ):
                moves[row[0]] = (row[1], path_from_db(row[2]), path_from_db(row[3]), *row[4:])
                for other in row[2:4]:
                    if other not in seen:
                        seen.add(other)
                        frontier.append(other)
        return {path_from_db(v) for v in seen}, [moves[k] for k in sorted(moves)]


def path_to_db(path: str) -> str | bytes:
    """The absolute path (undo may run from another folder): text when the name is valid
    UTF-8 (readable in any SQLite tool), the raw bytes otherwise, so a journal can always
    put back exactly the name that was there."""
    path = os.path.abspath(path)
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def path_from_db(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value
