"""The files pipe wrote (sidecars, XMP, pictures, sheet pages), a part of the store: pipe
only ever replaces its own, and never reads them as inputs."""

from __future__ import annotations

from pipeline.store.connection import Connections, now_iso


class Outputs:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.written = 0  # files pipe wrote through this store: a run's "written"

    def output_digest(self, path: str) -> str | None:
        row = self.connections.conn.execute(
            "SELECT digest FROM outputs WHERE path = ?", (path,)
        ).fetchone()
        return row[0] if row else None

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

    def count_rewritten(self) -> None:
        """A user's file pipe rewrote in place (metadata embedded in a photo): counted as
        written, but not remembered as pipe's output, since it stays an input."""
        self.written += 1

    def forget_output(self, path: str) -> None:
        """After an undo put the user's file back: pipe no longer wrote what is there."""
        with self.connections.transaction() as c:
            c.execute("DELETE FROM outputs WHERE path = ?", (path,))

    def is_output(self, key: str) -> bool:
        """Whether pipe wrote the file at `key`; safe from any thread."""
        with self.connections.reading() as conn:
            found = conn.execute("SELECT 1 FROM outputs WHERE path = ?", (key,)).fetchone()
        return found is not None
