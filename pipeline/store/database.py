"""The SQLite store: runs, per-file items and history, and the answer cache.

One database (WAL mode) shared by every run; each process writes from one thread. Two runs
over the same files at once are kept apart by claims: an item being processed has
a claim (recipe, path and the recipe's ask_key, so runs of differently set recipes never
block each other) held by its run, and a claim is only taken over when that run is gone
(ended, its process dead, or silent for longer than STALE_SECONDS). A run whose process
died (killed, or the disk filled so it could not record its end) is marked "died" by the
next run on the same host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.answers import Answer
from pipeline.errors import DatabaseError
from pipeline.server_text import redact
from pipeline.store.answer_cache import AnswerCache, answer_from_row, now_iso
from pipeline.store.errors import check_is_pipes, explain
from pipeline.store.folder_rows import folder_range
from pipeline.store.schema import MIGRATIONS

if TYPE_CHECKING:
    import sqlite_utils


STALE_SECONDS = 60.0
HEARTBEAT_SECONDS = 5.0


# The columns of `items` that make an ItemRow, in its field order.
_ITEM_COLUMNS = "status, size, mtime_ns, hash, ask_key, fingerprint, run_id, reason"


@dataclass(frozen=True)
class ItemRow:
    status: str
    size: int
    mtime_ns: int
    hash: str | None
    ask_key: str | None
    fingerprint: str | None
    run_id: int | None
    reason: str | None

    def is_finished(self, size: int, mtime_ns: int, ask_key: str) -> bool:
        """Done (or skipped for a reason) with this very file and recipe: nothing to do."""
        return (
            self.status in ("done", "skipped")
            and self.size == size
            and self.mtime_ns == mtime_ns
            and self.ask_key == ask_key
        )


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


class Store(AnswerCache):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=30, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as e:
            raise explain(e, path) from None
        self.conn = conn
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # Before the first write (WAL rewrites the header): is this file pipe's?
            check_is_pipes(conn, path, (name for name, _ in MIGRATIONS))
            _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints
            self.migrate()
        except sqlite3.Error as e:
            conn.close()
            raise explain(e, path) from None
        except BaseException:
            conn.close()
            raise
        self._alive: dict[int, tuple[float, bool]] = {}
        self._owner = threading.get_ident()
        self._local = threading.local()
        self.host = socket.gethostname()
        self.outputs_written = 0  # files pipe wrote through this store: a run's "written"

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection; imported lazily (it costs ~0.2 s at start)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        self.conn.close()

    def _reader(self) -> sqlite3.Connection:
        """The connection for this thread's reads: the store's own in the thread that opened
        it, a thread's own elsewhere. A run stopping early closes the store while daemon
        workers may still be inside a query; closing a connection under a query in another
        thread crashes the process (seen: SIGSEGV at the end of a refused run)."""
        if threading.get_ident() == self._owner or str(self.path) == ":memory:":
            return self.conn
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
        return conn

    def migrate(self) -> None:
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM _migrations")}
            for name, func in MIGRATIONS:
                if name not in done:
                    func(self.db)
                    self.conn.execute(
                        "INSERT INTO _migrations (name, applied) VALUES (?, ?)", (name, now_iso())
                    )

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            if not exc_type:
                try:
                    self.conn.execute("COMMIT")
                    return
                except sqlite3.Error:
                    self._rollback()  # a failed COMMIT (disk full) may leave it open
                    raise
            self._rollback()

        def _rollback(self) -> None:
            # SQLite may have rolled back already (disk full): keep the first error.
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")

    def transaction(self) -> Store._Tx:
        return Store._Tx(self.conn)

    def explain(self, error: BaseException) -> DatabaseError:
        """The one line for an error SQLite gave about this database (see store_errors)."""
        return explain(error, self.path)

    def remember_output(self, path: str, digest: str, size: int | None = None) -> None:
        """Every file pipe writes is remembered here once written, so this counts them."""
        super().remember_output(path, digest, size)
        self.outputs_written += 1

    def is_output(self, key: str) -> bool:
        """Whether pipe wrote the file at `key`; safe from any thread (see _reader)."""
        found = self._reader().execute("SELECT 1 FROM outputs WHERE path = ?", (key,))
        return found.fetchone() is not None

    # -- runs ---------------------------------------------------------------------------
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
        with self.transaction() as c:
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
            return int(cur.lastrowid or 0)

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
        with self.transaction() as c:
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
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET ended = ?, status = ?, exit_code = ? WHERE id = ?",
                (now_iso(), status, exit_code, run_id),
            )
            # Release claims this run still holds (interrupted work is simply not done yet).
            c.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def set_run_backends(self, run_id: int, answered: dict[str, int]) -> None:
        """How many model calls each server of a pool answered in this run."""
        with self.transaction() as c:
            c.execute("UPDATE runs SET backends = ? WHERE id = ?", (json.dumps(answered), run_id))

    def run_alive(self, run_id: int) -> bool:
        cached = self._alive.get(run_id)
        if cached and time.monotonic() - cached[0] < 2.0:
            return cached[1]
        row = self.conn.execute(
            "SELECT status, pid, host, heartbeat FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        alive = bool(row) and row[0] == "running" and time.time() - (row[3] or 0) < STALE_SECONDS
        if alive and row[2] == self.host:
            alive = _pid_alive(row[1])
        self._alive[run_id] = (time.monotonic(), alive)
        return alive

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))

    def _dicts(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    # -- items --------------------------------------------------------------------------
    def item_and_answer(self, recipe: str, path: str) -> tuple[ItemRow | None, Answer | None]:
        """The item's row and its cached final answer, in one query (the resume path)."""
        row = self.conn.execute(
            f"SELECT {_ITEM_COLUMNS}, c.answer, c.kind FROM items i"
            " LEFT JOIN cache c USING (fingerprint) WHERE i.recipe = ? AND i.path = ?",
            (recipe, path),
        ).fetchone()
        return (ItemRow(*row[:8]), answer_from_row(row[8], row[9])) if row else (None, None)

    def items_in_folder(
        self, recipe: str, folder: str, start: str, limit: int
    ) -> list[tuple[str, tuple[ItemRow | None, Answer | None]]]:
        """As item_and_answer for the items directly in `folder` (ending with a separator)
        from `start` on, in path order: a folder's items a chunk at a time (FolderRows)."""
        low, high = folder_range(folder)
        rows = self.conn.execute(
            f"SELECT i.path, {_ITEM_COLUMNS}, c.answer, c.kind FROM items i"
            " LEFT JOIN cache c USING (fingerprint) WHERE i.recipe = ? AND i.path >= ?"
            " AND i.path < ? AND instr(substr(i.path, ?), ?) = 0 ORDER BY i.path LIMIT ?",
            (recipe, max(low, start), high, len(folder) + 1, os.sep, limit),
        ).fetchall()
        return [(r[0], (ItemRow(*r[1:9]), answer_from_row(r[9], r[10]))) for r in rows]

    def claim(
        self,
        recipe: str,
        path: str,
        run_id: int,
        size: int,
        mtime_ns: int,
        ask_key: str,
        redo: bool,
    ) -> tuple[str, ItemRow | None]:
        """Take an item for this run. Returns ("claimed", previous row), ("busy", row) when
        another live run holds it for the same recipe and settings (`ask_key`), or
        ("finished", row) when it is already done as it is. The item's row itself is left
        as it was until the run finishes the item."""
        with self.transaction() as c:
            row = c.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE recipe = ? AND path = ?", (recipe, path)
            ).fetchone()
            previous = ItemRow(*row) if row else None
            if previous and not redo and previous.is_finished(size, mtime_ns, ask_key):
                return "finished", previous
            holder = c.execute(
                "SELECT run_id FROM claims WHERE recipe = ? AND path = ? AND ask_key = ?",
                (recipe, path, ask_key),
            ).fetchone()
            if holder and holder[0] != run_id and self.run_alive(holder[0]):
                return "busy", previous
            c.execute(
                "INSERT OR REPLACE INTO claims (recipe, path, ask_key, run_id, claimed)"
                " VALUES (?, ?, ?, ?, ?)",
                (recipe, path, ask_key, run_id, now_iso()),
            )
            c.execute(
                "INSERT INTO items (recipe, path, size, mtime_ns, status, attempts, run_id,"
                " updated) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)"
                " ON CONFLICT (recipe, path) DO NOTHING",
                (recipe, path, size, mtime_ns, run_id, now_iso()),
            )
        return "claimed", previous

    def finish(
        self,
        recipe: str,
        path: str,
        run_id: int,
        *,
        status: str,
        size: int,
        mtime_ns: int,
        hash: str | None,
        ask_key: str,
        fingerprint: str | None,
        reason: str | None,
        attempts: int,
        history: dict[str, Any],
        cache_rows: list[dict[str, Any]],
    ) -> None:
        """Record an item's outcome, its history line and new cache entries in one commit."""
        with self.transaction() as c:
            self._insert_cache(c, cache_rows)
            c.execute(
                "UPDATE items SET status = ?, size = ?, mtime_ns = ?, hash = ?, ask_key = ?,"
                " fingerprint = ?, reason = ?, attempts = attempts + ?, run_id = ?, updated = ?"
                " WHERE recipe = ? AND path = ?",
                (
                    status,
                    size,
                    mtime_ns,
                    hash,
                    ask_key,
                    fingerprint,
                    reason,
                    attempts,
                    run_id,
                    now_iso(),
                    recipe,
                    path,
                ),
            )
            c.execute(
                "DELETE FROM claims WHERE recipe = ? AND path = ? AND run_id = ?",
                (recipe, path, run_id),
            )
            self._insert_history(c, run_id, recipe, path, history)

    @staticmethod
    def _insert_history(
        c: sqlite3.Connection, run_id: int, recipe: str, path: str, history: dict[str, Any]
    ) -> None:
        c.execute(
            "INSERT INTO history (run_id, recipe, path, status, fingerprint, error, note,"
            " started, duration_ms, prompt_tokens, completion_tokens, attempts, meta)"
            " VALUES (:run_id, :recipe, :path, :status, :fingerprint, :error, :note,"
            " :started, :duration_ms, :prompt_tokens, :completion_tokens, :attempts, :meta)",
            {"run_id": run_id, "recipe": recipe, "path": path, "meta": None, **history},
        )

    def adopt(
        self,
        recipe: str,
        path: str,
        run_id: int,
        size: int,
        mtime_ns: int,
        hash: str | None,
        ask_key: str,
        fingerprint: str | None,
    ) -> None:
        """A renamed file is finished under its new name too (a re-run skips it by stat)."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO items (recipe, path, size, mtime_ns, hash, ask_key, fingerprint,"
                " status, attempts, run_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'done', 0, ?, ?)"
                " ON CONFLICT (recipe, path) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, hash = excluded.hash, ask_key = excluded.ask_key,"
                " fingerprint = excluded.fingerprint, status = 'done', run_id = excluded.run_id,"
                " updated = excluded.updated",
                (recipe, path, size, mtime_ns, hash, ask_key, fingerprint, run_id, now_iso()),
            )

    def record_untracked(
        self,
        run_id: int,
        recipe: str,
        path: str,
        history: dict[str, Any],
        cache_rows: list[dict[str, Any]],
    ) -> None:
        """History (and cache) for something that is not a tracked file: stdin text, a bad path."""
        with self.transaction() as c:
            self._insert_cache(c, cache_rows)
            self._insert_history(c, run_id, recipe, path, history)

    def release(self, recipe: str, path: str, run_id: int) -> None:
        with self.transaction() as c:
            c.execute(
                "DELETE FROM claims WHERE recipe = ? AND path = ? AND run_id = ?",
                (recipe, path, run_id),
            )

    def history_rows(self, keys: list[str]) -> list[dict[str, Any]]:
        """The history rows of the items at `keys`, with their answers and models."""
        marks = ", ".join("?" * len(keys))
        return self._dicts(
            "SELECT 'item' AS event, h.*, c.answer, c.kind, r.model FROM history h"
            " LEFT JOIN cache c ON c.fingerprint = h.fingerprint"
            " LEFT JOIN runs r ON r.id = h.run_id"
            f" WHERE h.path IN ({marks}) ORDER BY h.id",
            tuple(keys),
        )


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


def _use_wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without its busy handler,
    while another process is creating the same new database: two cron runs starting
    together must not fail for that, so wait as the busy timeout would."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


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
