"""One file's story for `pipe show`: what each run did to it and its renames, followed
through every name pipe gave it."""

from __future__ import annotations

from typing import Any

from pipeline.paths import display_path
from pipeline.renaming.journal import Journal
from pipeline.store.database import Store


def item_history(store: Store, path: str) -> list[dict[str, Any]]:
    """Everything that happened to the file at `path` (as given, or any name it had through
    pipe's renames): its history rows and the renames and undos, oldest first. Each row
    has an `event`: "item", "renamed" or "undone"."""
    names, moves = Journal(store).names_of(path)
    keys = sorted({display_path(name) for name in names} | {_history_key(path)})
    rows = store.history_rows(keys)
    for run_id, old, new, state, planned, updated in moves:
        old_key, new_key = display_path(old), display_path(new)
        rows.append(_move(run_id, planned, "renamed", old_key, new_key))
        if state == "undone":
            rows.append(_move(run_id, updated, "undone", new_key, old_key))
    return sorted(rows, key=lambda row: row["started"] or "")


def _history_key(path: str) -> str:
    return path if path.startswith("<") else display_path(path)  # "<stdin>" is not a file


def _move(run_id: int, when: str, event: str, old: str, new: str) -> dict[str, Any]:
    return {"event": event, "run_id": run_id, "started": when, "path": old, "new_path": new}
