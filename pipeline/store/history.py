"""History, a part of the store: what each run did to each file, one row per item, and one
file's story for `pipe show`, followed through every name pipe gave it."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from pipeline.paths import display_path
from pipeline.store.connection import Connections
from pipeline.store.runs import rows_as_dicts

if TYPE_CHECKING:
    from pipeline.store.database import Store


class History:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    @staticmethod
    def insert(
        c: sqlite3.Connection, run_id: int, recipe: str, path: str, history: dict[str, Any]
    ) -> None:
        """One item's line, inside the caller's transaction (with the item's outcome)."""
        c.execute(
            "INSERT INTO history (run_id, recipe, path, status, fingerprint, error, note,"
            " started, duration_ms, prompt_tokens, completion_tokens, attempts, meta)"
            " VALUES (:run_id, :recipe, :path, :status, :fingerprint, :error, :note,"
            " :started, :duration_ms, :prompt_tokens, :completion_tokens, :attempts, :meta)",
            {"run_id": run_id, "recipe": recipe, "path": path, "meta": None, **history},
        )

    def history_rows(self, keys: list[str]) -> list[dict[str, Any]]:
        """The history rows of the items at `keys`, with their answers and models."""
        marks = ", ".join("?" * len(keys))
        cursor = self.connections.conn.execute(
            "SELECT 'item' AS event, h.*, c.answer, c.kind, r.model FROM history h"
            " LEFT JOIN cache c ON c.fingerprint = h.fingerprint"
            " LEFT JOIN runs r ON r.id = h.run_id"
            f" WHERE h.path IN ({marks}) ORDER BY h.id",
            tuple(keys),
        )
        return rows_as_dicts(cursor)


def item_history(store: Store, path: str) -> list[dict[str, Any]]:
    """Everything that happened to the file at `path` (as given, or any name it had through
    pipe's renames): its history rows, the renames and undos, and the files pipe replaced
    for it (its sidecar, or the photo itself), oldest first. Each row has an `event`:
    "item", "renamed", "undone" or "replaced"."""
    names, moves = store.journal.names_of(path)
    keys = sorted({display_path(name) for name in names} | {_history_key(path)})
    rows = store.history_rows(keys)
    for run_id, old, new, state, planned, updated in moves:
        old_key, new_key = display_path(old), display_path(new)
        rows.append(_move(run_id, planned, "renamed", old_key, new_key))
        if state == "undone":
            rows.append(_move(run_id, updated, "undone", new_key, old_key))
    for run_id, target, kind, state, planned, _ in store.replaced.of_files(keys):
        rows.append(
            {"event": "replaced", "run_id": run_id, "started": planned, "path": target}
            | {"kind": kind, "state": state}
        )
    return sorted(rows, key=lambda row: row["started"] or "")


def _history_key(path: str) -> str:
    return path if path.startswith("<") else display_path(path)  # "<stdin>" is not a file


def _move(run_id: int, when: str, event: str, old: str, new: str) -> dict[str, Any]:
    return {"event": event, "run_id": run_id, "started": when, "path": old, "new_path": new}
