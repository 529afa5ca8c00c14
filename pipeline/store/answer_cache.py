"""What pipe keeps of its answers and outputs, as part of the store (Store inherits it):
the answer cache keyed by step fingerprint, the pictures' PNGs once per sha256, and the
files pipe wrote (so it only ever replaces its own, and never reads them as inputs)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from pipeline.answers import Answer, Picture
from pipeline.store.folder_rows import folder_range


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AnswerCache:
    conn: sqlite3.Connection

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def _insert_cache(c: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            answer = row["answer"]
            if isinstance(answer, Picture):
                if answer.png is not None:
                    c.execute(
                        "INSERT OR IGNORE INTO pictures (sha256, png, created) VALUES (?, ?, ?)",
                        (answer.sha256, answer.png, now_iso()),
                    )
                kind, text = "picture", answer.to_json()
            else:
                kind, text = "text", answer
            c.execute(
                "INSERT OR REPLACE INTO cache (fingerprint, step, answer, kind, model,"
                " prompt_tokens, completion_tokens, duration_ms, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["fingerprint"],
                    row["step"],
                    text,
                    kind,
                    row["model"],
                    row["prompt_tokens"],
                    row["completion_tokens"],
                    row["duration_ms"],
                    now_iso(),
                ),
            )

    def forget_answer(self, fingerprint: str) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM cache WHERE fingerprint = ?", (fingerprint,))

    def save_answers(self, cache_rows: list[dict[str, Any]]) -> None:
        if cache_rows:
            with self.transaction() as c:
                self._insert_cache(c, cache_rows)

    # -- files pipe wrote (sidecars) ------------------------------------------------------
    def output_digest(self, path: str) -> str | None:
        row = self.conn.execute("SELECT digest FROM outputs WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def outputs_in_folder(self, folder: str, start: str, limit: int) -> list[tuple[str, str]]:
        """(path, digest) of the outputs directly in `folder` (ending with a separator)
        from `start` on, in path order: a folder's outputs a chunk at a time (FolderRows)."""
        low, high = folder_range(folder)
        return self.conn.execute(
            "SELECT path, digest FROM outputs WHERE path >= ? AND path < ?"
            " AND instr(substr(path, ?), ?) = 0 ORDER BY path LIMIT ?",
            (max(low, start), high, len(folder) + 1, os.sep, limit),
        ).fetchall()

    def written_output(self, path: str) -> tuple[str, int | None] | None:
        """The digest and size of what pipe last wrote at `path` (size None: an older pipe
        did not record it)."""
        row = self.conn.execute(
            "SELECT digest, size FROM outputs WHERE path = ?", (path,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def remember_output(self, path: str, digest: str, size: int | None = None) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO outputs (path, digest, size, written) VALUES (?, ?, ?, ?)",
                (path, digest, size, now_iso()),
            )

    # -- cache --------------------------------------------------------------------------
    def cached_answer(self, fingerprint: str) -> Answer | None:
        """Asked by worker threads too (each through its own connection, see _reader)."""
        row = (
            self._reader()
            .execute("SELECT answer, kind FROM cache WHERE fingerprint = ?", (fingerprint,))
            .fetchone()
        )
        return answer_from_row(*row) if row else None

    def picture_png(self, sha256: str) -> bytes | None:
        """A cached picture's PNG, loaded only when an action needs the pixels."""
        row = (
            self._reader()
            .execute("SELECT png FROM pictures WHERE sha256 = ?", (sha256,))
            .fetchone()
        )
        return bytes(row[0]) if row else None


def answer_from_row(text: str | None, kind: str | None) -> Answer | None:
    if text is None:
        return None
    return Picture.from_json(text) if kind == "picture" else text
