"""The files pipe wrote (sidecars, XMP, pictures, sheet pages), a part of the store: pipe
only ever replaces its own, and never reads them as inputs."""

from __future__ import annotations

import os

from pipeline.store.connection import Connections, now_iso
from pipeline.store.folder_rows import folder_range


class Outputs:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.written = 0  # files pipe wrote through this store: a run's "written"

    def output_digest(self, path: str) -> str | None:
        row = self.connections.conn.execute(
            "SELECT digest FROM outputs WHERE path = ?", (path,)
        ).fetchone()
        return row[0] if row else None

    def outputs_in_folder(self, folder: str, start: str, limit: int) -> list[tuple[str, str]]:
        """(path, digest) of the outputs directly in `folder` (ending with a separator)
        from `start` on, in path order: a folder's outputs a chunk at a time (FolderRows)."""
        low, high = folder_range(folder)
        return self.connections.conn.execute(
            "SELECT path, digest FROM outputs WHERE path >= ? AND path < ?"
            " AND instr(substr(path, ?), ?) = 0 ORDER BY path LIMIT ?",
            (max(low, start), high, len(folder) + 1, os.sep, limit),
        ).fetchall()

    def written_output(self, path: str) -> tuple[str, int | None] | None:
        """The digest and size of what pipe last wrote at `path` (size None: an older pipe
        did not record it)."""
        row = self.connections.conn.execute(
            "SELECT digest, size FROM outputs WHERE path = ?", (path,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def remember_output(self, path: str, digest: str, size: int | None = None) -> None:
        """Every file pipe writes is remembered here once written, so this counts them."""
        with self.connections.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO outputs (path, digest, size, written) VALUES (?, ?, ?, ?)",
                (path, digest, size, now_iso()),
            )
        self.written += 1

    def is_output(self, key: str) -> bool:
        """Whether pipe wrote the file at `key`; safe from any thread."""
        with self.connections.reading() as conn:
            found = conn.execute("SELECT 1 FROM outputs WHERE path = ?", (key,)).fetchone()
        return found is not None
