"""The store's connections to its SQLite file, shared by every part of the store.

One connection for the thread that opened the store (all writes go through it, in
transactions), and one per other thread for its reads, kept until the store closes. A
current database is opened without a single write: no DDL, no journal-mode change, so
`pipe runs` works on a read-only file; migrations run only when the schema is behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import DatabaseError
from pipeline.store import schema
from pipeline.store.errors import check_is_pipes, explain


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Connections:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.memory = str(path) == ":memory:"
        try:
            if not self.memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=30, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as e:
            raise explain(e, path) from None
        self.conn = conn
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            _keep_index_in_step(conn)
            # Before the first write (WAL rewrites the header): is this file pipe's?
            applied = check_is_pipes(conn, path, (name for name, _ in schema.MIGRATIONS))
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints
            if {name for name, _ in schema.MIGRATIONS} - set(applied):  # behind
                with self.transaction():
                    schema.migrate(conn)
        except sqlite3.Error as e:
            conn.close()
            raise explain(e, path) from None
        except BaseException:
            conn.close()
            raise
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._readers: list[_Reader] = []
        self._closed = False

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for this thread's reads: the store's own in the thread that opened
        it, a thread's own elsewhere (closed with the store). A run stopping early closes
        the store while daemon workers may still be inside a query, and closing a
        connection under a query in another thread crashes the process (seen: SIGSEGV at
        the end of a refused run): so close() waits for a reader's query to end, and a
        thread still reading after close() gets a connection of its own for that read."""
        if threading.get_ident() == self._owner or self.memory:
            yield self.conn
            return
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            with self._lock:
                if not self._closed:
                    reader = self._local.reader = _Reader(self.path)
                    self._readers.append(reader)
        if reader is None:
            with contextlib.closing(_connect(self.path)) as late:
                yield late
            return
        with reader.lock:
            if reader.closed:
                with contextlib.closing(_connect(self.path)) as late:
                    yield late
            else:
                yield reader.conn

    def transaction(self) -> Transaction:
        return Transaction(self.conn)

    def explain(self, error: BaseException) -> DatabaseError:
        """The one line for an error SQLite gave about this database (see store/errors)."""
        return explain(error, self.path)

    def open_readers(self) -> int:
        """How many per-thread connections are open (0 once closed)."""
        return sum(not reader.closed for reader in self._readers)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        self.conn.close()


class _Reader:
    """One thread's connection; its lock is held for the length of a read."""

    def __init__(self, path: Path) -> None:
        self.conn = _connect(path)
        self.lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    # Used by one thread at a time (its lock), and closed by the store's own at the end.
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    _keep_index_in_step(conn)
    return conn


def _keep_index_in_step(conn: sqlite3.Connection) -> None:
    """A row INSERT OR REPLACE replaces fires its delete triggers only with this on: the
    search index's triggers (schema.py, 012_search) must hear of every answer replaced."""
    conn.execute("PRAGMA recursive_triggers = ON")


class Transaction:
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
