"""The answer cache, a part of the store: each step's answer keyed by its fingerprint (the
prompt, the model and the settings it was asked with), and the pictures' PNGs once per
sha256, loaded only when an action needs the pixels."""

from __future__ import annotations

import sqlite3
from typing import Any

from pipeline.answers import Answer, Picture
from pipeline.store.connection import Connections, now_iso

__all__ = ["AnswerCache", "answer_from_row", "now_iso"]


class AnswerCache:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    @staticmethod
    def insert(c: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        """Write answers inside the caller's transaction (with an item's outcome)."""
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
                # An upsert, not INSERT OR REPLACE: the row's update triggers keep the search
                # index in step (schema.py, 012_search) on any connection.
                "INSERT INTO cache (fingerprint, step, answer, kind, model,"
                " prompt_tokens, completion_tokens, duration_ms, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET"
                " step = excluded.step, answer = excluded.answer, kind = excluded.kind,"
                " model = excluded.model, prompt_tokens = excluded.prompt_tokens,"
                " completion_tokens = excluded.completion_tokens,"
                " duration_ms = excluded.duration_ms, created = excluded.created",
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
        with self.connections.transaction() as c:
            c.execute("DELETE FROM cache WHERE fingerprint = ?", (fingerprint,))

    def save_answers(self, cache_rows: list[dict[str, Any]]) -> None:
        if cache_rows:
            with self.connections.transaction() as c:
                self.insert(c, cache_rows)

    def cached_answer(self, fingerprint: str) -> Answer | None:
        """Asked by worker threads too (each through its own connection)."""
        with self.connections.reading() as conn:
            row = conn.execute(
                "SELECT answer, kind FROM cache WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
        return answer_from_row(*row) if row else None

    def picture_png(self, sha256: str) -> bytes | None:
        """A cached picture's PNG, loaded only when an action needs the pixels."""
        with self.connections.reading() as conn:
            row = conn.execute("SELECT png FROM pictures WHERE sha256 = ?", (sha256,)).fetchone()
        return bytes(row[0]) if row else None


def answer_from_row(text: str | None, kind: str | None) -> Answer | None:
    if text is None:
        return None
    return Picture.from_json(text) if kind == "picture" else text
