"""Runs, a part of the store: one row per `pipe run`, its counts as it goes, and whether it
is still alive (for claims and the rename journal). A run whose process died (killed, or the
disk filled so it could not record its end) is marked "died" by the next run on the same
host, and its claims go with it."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from pipeline.server_text import redact
from pipeline.store.connection import Connections, now_iso

STALE_SECONDS = 60.0  # a run silent for longer is gone, wherever its process is
HEARTBEAT_SECONDS = 5.0


# A run's counts, named once for every report: the summary on stderr, `pipe runs`, and
# `runs --json` (whose keys are these names, as `pipe run --json` records' statuses are).
# Each name and the words people read for it, in the order they are shown.
COUNT_WORDS: dict[str, str] = {
    "done": "done",  # answered by the model in this run
    "cached": "from cache",  # answered by the answer cache (the same text asked before)
    "skipped": "skipped",  # settled already (finished earlier, empty, binary, claimed)
    "failed": "failed",
    "written": "written",  # files pipe wrote: sidecars, XMP, pictures, contact sheet pages
}
_COUNTED_AS = {"planned": "done"}  # a result's status that counts under another name


@dataclass
class Counts:
    done: int = 0
    cached: int = 0
    skipped: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    written: int = 0
    busy: int = 0  # of the skipped: left to another run doing the same recipe now

    def count(self, status: str) -> None:
        """One more item with this result status (an unknown one counts as failed)."""
        name = _COUNTED_AS.get(status, status)
        if name not in COUNT_WORDS or name == "written":
            name = "failed"
        setattr(self, name, getattr(self, name) + 1)

    def words(self, dry_run: bool = False) -> str:
        """`3 done, 1 from cache, 0 skipped, 1 failed, 2 written`: "previewed" for done in
        a dry run, and files written only when there were some."""
        shown = []
        for name, word in COUNT_WORDS.items():
            n = getattr(self, name)
            if name == "written" and not n:
                continue
            shown.append(f"{n} {'previewed' if dry_run and name == 'done' else word}")
        return ", ".join(shown)

    @classmethod
    def of_run(cls, row: dict[str, Any]) -> Counts:
        """The counts stored in a `runs` row."""
        return cls(**{name: row.get(name) or 0 for name in cls.__dataclass_fields__})


class Runs:
    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.host = socket.gethostname()
        self._alive: dict[int, tuple[float, bool]] = {}
        self.started: int | None = None  # the run this store last started (actions journal it)

    def start_run(
        self,
        recipe: str,
        origin: str,
        args: list[str],
        backend: str,
        model: str,
        dry_run: bool = False,
    ) -> int:
        # The command line may hold a backend URL's password: it is stored hidden.
        args, backend = [redact(a) for a in args], redact(backend)
        with self.connections.transaction() as c:
            self._mark_dead_runs(c)
            cur = c.execute(
                "INSERT INTO runs (recipe, recipe_origin, args, backend, model, started, status,"
                " pid, host, heartbeat, done, cached, skipped, failed, prompt_tokens,"
                " completion_tokens, written, dry_run) VALUES (?, ?, ?, ?, ?, ?, 'running', ?,"
                " ?, ?, 0, 0, 0, 0, 0, 0, 0, ?)",
                (
                    recipe,
                    origin,
                    json.dumps(args),
                    backend,
                    model,
                    now_iso(),
                    os.getpid(),
                    self.host,
                    time.time(),
                    int(dry_run),
                ),
            )
            self.started = int(cur.lastrowid or 0)
            return self.started

    def _mark_dead_runs(self, c: sqlite3.Connection) -> None:
        """Runs of this host still "running" whose process is gone: they died without
        recording their end (killed, or the disk was full). Their claims go with them."""
        rows = c.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (self.host,)
        ).fetchall()
        for run_id, pid in rows:
            if _pid_alive(pid):
                continue
            c.execute(
                "UPDATE runs SET status = 'died', ended = ? WHERE id = ?", (now_iso(), run_id)
            )
            c.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def heartbeat(self, run_id: int, counts: Counts) -> None:
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE runs SET heartbeat = ?, done = ?, cached = ?, skipped = ?, failed = ?,"
                " prompt_tokens = ?, completion_tokens = ?, written = ? WHERE id = ?",
                (
                    time.time(),
                    counts.done,
                    counts.cached,
                    counts.skipped,
                    counts.failed,
                    counts.prompt_tokens,
                    counts.completion_tokens,
                    counts.written,
                    run_id,
                ),
            )

    def end_run(self, run_id: int, status: str, exit_code: int, counts: Counts) -> None:
        self.heartbeat(run_id, counts)
        with self.connections.transaction() as c:
            c.execute(
                "UPDATE runs SET ended = ?, status = ?, exit_code = ? WHERE id = ?",
                (now_iso(), status, exit_code, run_id),
            )
            # Release claims this run still holds (interrupted work is simply not done yet).
            c.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def set_run_backends(self, run_id: int, answered: dict[str, int]) -> None:
        """How many model calls each server of a pool answered in this run."""
        with self.connections.transaction() as c:
            c.execute("UPDATE runs SET backends = ? WHERE id = ?", (json.dumps(answered), run_id))

    def run_alive(self, run_id: int) -> bool:
        cached = self._alive.get(run_id)
        if cached and time.monotonic() - cached[0] < 2.0:
            return cached[1]
        row = self.connections.conn.execute(
            "SELECT status, pid, host, heartbeat FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        alive = bool(row) and row[0] == "running" and time.time() - (row[3] or 0) < STALE_SECONDS
        if alive and row[2] == self.host:
            alive = _pid_alive(row[1])
        self._alive[run_id] = (time.monotonic(), alive)
        return alive

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cursor = self.connections.conn.execute(
            "SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)
        )
        return rows_as_dicts(cursor)


def rows_as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
