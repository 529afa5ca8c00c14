"""What `pipe bench` measured, a part of the store: one row per test per backend, with the
time, model and settings, so `pipe bench --history` shows how a box changed over time."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from pipeline.bench.figures import Figures
from pipeline.server_text import redact
from pipeline.store.connection import Connections, now_iso

# The Figures fields kept as typed columns (the rest of the row is `settings`, as JSON).
COLUMNS = tuple(f.name for f in fields(Figures) if f.name != "settings")
MAX_SETTINGS_CHARS = 64 * 1024  # what pipe writes is short; more is not pipe's


class BenchResults:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def add(self, figures: Figures) -> None:
        """Keep one test's figures (the backend's name without credentials)."""
        row: dict[str, Any] = {name: getattr(figures, name) for name in COLUMNS}
        row["backend"] = redact(figures.backend)
        row["at"] = figures.at or now_iso()
        row["settings"] = redact(json.dumps(figures.settings, ensure_ascii=False, default=str))
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        with self.connections.transaction() as c:
            c.execute(f"INSERT INTO bench ({names}) VALUES ({marks})", row)

    def history(self, backend: str | None = None, limit: int = 100) -> list[Figures]:
        """The newest `limit` figures (of `backend` only, if given), oldest first."""
        where, args = ("WHERE backend = ?", [redact(backend)]) if backend else ("", [])
        with self.connections.reading() as conn:
            cursor = conn.execute(
                f"SELECT {', '.join(COLUMNS)}, settings FROM bench {where}"
                " ORDER BY at DESC, id DESC LIMIT ?",
                [*args, limit],
            )
            rows = cursor.fetchall()
        return [_figures(row) for row in reversed(rows)]


def _figures(row: tuple[Any, ...]) -> Figures:
    data = dict(zip((*COLUMNS, "settings"), row, strict=True))
    text = data["settings"]
    try:
        settings = json.loads(text) if text and len(text) <= MAX_SETTINGS_CHARS else {}
    except ValueError:
        settings = {}
    data["settings"] = settings if isinstance(settings, dict) else {}
    return Figures.from_json(data)
