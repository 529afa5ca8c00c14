"""The journal of files pipe replaced, a part of the store (the `replaced` table, made by
migration 011): one row per replacement, written 'planned' before the file is touched and
marked 'applied' after, with where the old bytes are kept (`folder`/<sha256>). Sidecar
merges and embedded writes share it; `actions/replacing.py` is the protocol, this is the
bookkeeping that undo, prune and `pipe runs` read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.store.connection import Connections, now_iso
from pipeline.store.journal import path_from_db, path_to_db
from pipeline.store.runs import Runs

_COLUMNS = (
    "id, run_id, path, kind, old_sha, old_size, backup, new_sha, new_size, temp, state,"
    " updated, pruned"
)


@dataclass(frozen=True)
class Replacement:
    """One journaled replacement, as undo and the resolving of a killed run read it."""

    id: int
    run_id: int
    path: str  # absolute
    kind: str
    old_sha: str | None  # None: there was no file; pipe made it
    old_size: int | None
    backup: str | None  # where the old bytes are kept
    new_sha: str
    new_size: int
    temp: str | None  # the temporary file a killed run may have left beside `path`
    state: str
    updated: str
    pruned: str | None

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Replacement:
        values = list(row)
        values[2] = path_from_db(values[2])
        if values[9] is not None:
            values[9] = path_from_db(values[9])
        return cls(*values)


class Replaced:
    def __init__(self, connections: Connections, runs: Runs, folder: Path) -> None:
        self.connections = connections
        self.conn = connections.conn
        self.runs = runs
        self.folder = folder  # the kept bytes, one file per sha256

    def backup_path(self, sha256: str) -> Path:
        return self.folder / sha256

    def plan(
        self,
        run_id: int,
        path: str,
        old: tuple[str, int] | None,
        new: tuple[str, int],
        *,
        kind: str,
        temp: str | None = None,
        recipe: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> int:
        """Journal a replacement before any byte of `path` changes; its id."""
        backup = str(self.backup_path(old[0])) if old else None
        with self.connections.transaction() as c:
            cur = c.execute(
                "INSERT INTO replaced (run_id, path, kind, recipe, old_sha, old_size, backup,"
                " new_sha, new_size, temp, fields, state, planned, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?)",
                (
                    run_id,
                    path_to_db(path),
                    kind,
                    recipe,
                    old[0] if old else None,
                    old[1] if old else None,
                    backup,
                    new[0],
                    new[1],
                    path_to_db(temp) if temp else None,
                    json.dumps(fields, ensure_ascii=False) if fields is not None else None,
                    now_iso(),
                    now_iso(),
                ),
            )
            return int(cur.lastrowid or 0)

    def mark(self, replacement_id: int, state: str, reason: str | None = None) -> None:
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE replaced SET state = ?, reason = ?, updated = ? WHERE id = ?",
                (state, reason, now_iso(), replacement_id),
            )

    def _select(self, where: str, args: tuple[Any, ...]) -> list[Replacement]:
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM replaced WHERE {where}", args)
        return [Replacement.of(r) for r in rows.fetchall()]

    def orphaned(self) -> list[Replacement]:
        """Planned replacements of runs that are no longer alive (killed mid-replace)."""
        planned = self._select("state = 'planned' ORDER BY id", ())
        return [r for r in planned if not self.runs.run_alive(r.run_id)]

    def applied(self, run_id: int) -> list[Replacement]:
        """A run's applied replacements, newest first (the order undo walks them)."""
        return self._select("run_id = ? AND state = 'applied' ORDER BY id DESC", (run_id,))

    def last_run(self) -> int | None:
        row = self.conn.execute(
            "SELECT MAX(run_id) FROM replaced WHERE state = 'applied'"
        ).fetchone()
        return row[0] if row else None

    def last_undone_run(self) -> int | None:
        row = self.conn.execute(
            "SELECT MAX(run_id) FROM replaced WHERE state = 'undone'"
        ).fetchone()
        return row[0] if row else None

    def has_undone(self, run_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM replaced WHERE run_id = ? AND state = 'undone' LIMIT 1", (run_id,)
        ).fetchone()
        return row is not None

    def written_fields(self, path: str, kind: str, recipe: str | None) -> dict[Any, Any]:
        """What this recipe wrote into `path` and is still there (applied, not undone), per
        source (the photo a shared sidecar describes; None for rows without one), field by
        field: each from the newest row that set it. Other recipes' values are theirs."""
        rows = self.conn.execute(
            "SELECT fields FROM replaced WHERE path = ? AND kind = ? AND recipe IS ?"
            " AND state = 'applied' AND fields IS NOT NULL ORDER BY id DESC",
            (path_to_db(path), kind, recipe),
        ).fetchall()
        found: dict[Any, dict[str, Any]] = {}
        for (text,) in rows:
            written = json.loads(text)
            mine = found.setdefault(written.pop("source", None), {})
            for name, value in written.items():
                if value is not None:
                    mine.setdefault(name, value)
        return found

    def of_files(self, keys: list[str]) -> list[tuple[Any, ...]]:
        """The files pipe replaced for the files keyed `keys` (display paths): the file
        itself (embedded) or a sidecar describing it; (run_id, path, kind, state, planned,
        updated) each, oldest first."""
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            "SELECT run_id, path, kind, state, planned, updated FROM replaced"
            f" WHERE path IN ({marks}) OR (json_valid(fields)"
            f" AND json_extract(fields, '$.source') IN ({marks})) ORDER BY id",
            (*keys, *keys),
        ).fetchall()
        return [(r[0], path_from_db(r[1]), *r[2:]) for r in rows]

    def referenced(self, sha256: str) -> bool:
        """Whether a row not pruned still needs the backup of `sha256`."""
        row = self.conn.execute(
            "SELECT 1 FROM replaced WHERE old_sha = ? AND pruned IS NULL"
            " AND state IN ('planned', 'applied') LIMIT 1",
            (sha256,),
        ).fetchone()
        return row is not None

    def kept_bytes(self, run_ids: list[int]) -> dict[int, int]:
        """Per run, the size of the old bytes kept for it (each backup once per run), until
        `pipe prune` frees them: an undone run's too (they are still on disk)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self.conn.execute(
            "SELECT run_id, SUM(old_size) FROM (SELECT DISTINCT run_id, old_sha, old_size"
            f" FROM replaced WHERE run_id IN ({marks}) AND old_sha IS NOT NULL"
            " AND pruned IS NULL) GROUP BY run_id",
            run_ids,
        ).fetchall()
        return {r[0]: int(r[1] or 0) for r in rows}

    def is_pruned(self, run_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM replaced WHERE run_id = ? AND pruned IS NOT NULL"
            " AND state = 'applied' LIMIT 1",
            (run_id,),
        ).fetchone()
        return row is not None

    def prunable_runs(self, keep: int) -> list[int]:
        """Runs with kept backups, all but the newest `keep` of them, oldest first."""
        rows = self.conn.execute(
            "SELECT DISTINCT run_id FROM replaced WHERE pruned IS NULL"
            " AND state IN ('applied', 'abandoned', 'failed', 'undone') ORDER BY run_id DESC"
        ).fetchall()
        live = {r.run_id for r in self._select("state = 'planned'", ())}
        return sorted(r[0] for r in rows[keep:] if r[0] not in live)

    def prune(self, run_ids: list[int]) -> set[str]:
        """Mark the runs' rows pruned; the digests whose backups they were using."""
        digests: set[str] = set()
        with self.connections.transaction() as c:
            for run_id in run_ids:
                for (sha,) in c.execute(
                    "SELECT DISTINCT old_sha FROM replaced WHERE run_id = ? AND pruned IS NULL"
                    " AND old_sha IS NOT NULL",
                    (run_id,),
                ).fetchall():
                    digests.add(sha)
                c.execute(
                    "UPDATE replaced SET pruned = ? WHERE run_id = ? AND pruned IS NULL",
                    (now_iso(), run_id),
                )
        return digests
