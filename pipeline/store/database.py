"""The SQLite store: one database (WAL mode) shared by every run; each process writes from
one thread.

`Store` owns the connections (store/connection.py) and composes the parts, each a small
class over them for one capability: `run_table` (runs, their counts and liveness),
`items` (per-file rows and the claims that keep two runs apart), `cache` (answers and
pictures), `outputs` (the files pipe wrote), `history` (what each run did to each file),
`journal` (renames), `replaced` (files pipe replaced, their old bytes kept), `bench`
(what `pipe bench` measured) and `search` (full text over the answers, `pipe search`). A
part that needs another is given it (items asks run_table whether a claim's run is alive).
The methods callers use are the parts' own, bound on the store.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from pipeline.errors import DatabaseError
from pipeline.paths import replaced_dir
from pipeline.store.answer_cache import AnswerCache, now_iso
from pipeline.store.bench import BenchResults
from pipeline.store.connection import Connections, Transaction
from pipeline.store.history import History
from pipeline.store.items import ItemRow, Items
from pipeline.store.journal import Journal, path_from_db, path_to_db
from pipeline.store.outputs import Outputs
from pipeline.store.replaced import Replaced
from pipeline.store.runs import HEARTBEAT_SECONDS, STALE_SECONDS, Counts, Runs
from pipeline.store.search import Search

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_SECONDS",
    "Counts",
    "ItemRow",
    "Store",
    "now_iso",
    "path_from_db",
    "path_to_db",
]


class Store:
    def __init__(self, path: Path | str) -> None:
        self.connections = Connections(path)
        self.path = self.connections.path
        self.conn: sqlite3.Connection = self.connections.conn
        self.run_table = Runs(self.connections)
        self.host = self.run_table.host
        self.cache = AnswerCache(self.connections)
        self.outputs = Outputs(self.connections)
        self.history = History(self.connections)
        self.items = Items(self.connections, self.run_table, self.cache, self.history)
        self.journal = Journal(self.connections, self.run_table)
        self.bench = BenchResults(self.connections)
        self.replaced = Replaced(self.connections, self.run_table, replaced_dir(path))
        self.search = Search(self.connections, self.journal)
        self._bind()

    def _bind(self) -> None:
        """The parts' methods, callable on the store as before the parts existed."""
        runs, items, cache, outputs = self.run_table, self.items, self.cache, self.outputs
        self.start_run = runs.start_run
        self.heartbeat = runs.heartbeat
        self.end_run = runs.end_run
        self.set_run_backends = runs.set_run_backends
        self.run_alive = runs.run_alive
        self.runs = runs.runs
        self.item_and_answer = items.item_and_answer
        self.files_in_folder = items.files_in_folder
        self.file_row = items.file_row
        self.claim = items.claim
        self.finish = items.finish
        self.adopt = items.adopt
        self.record_untracked = items.record_untracked
        self.release = items.release
        self.forget_answer = cache.forget_answer
        self.save_answers = cache.save_answers
        self.cached_answer = cache.cached_answer
        self.picture_png = cache.picture_png
        self.output_digest = outputs.output_digest
        self.written_output = outputs.written_output
        self.remember_output = outputs.remember_output
        self.is_output = outputs.is_output
        self.history_rows = self.history.history_rows

    @property
    def outputs_written(self) -> int:
        """Files pipe wrote through this store: a run's "written"."""
        return self.outputs.written

    def transaction(self) -> Transaction:
        return self.connections.transaction()

    def explain(self, error: BaseException) -> DatabaseError:
        """The one line for an error SQLite gave about this database (see store/errors)."""
        return self.connections.explain(error)

    def close(self) -> None:
        """Close every connection, the other threads' too (see Connections.reading), once
        the answers still queued for the search index are in it (if it can be written)."""
        with contextlib.suppress(sqlite3.Error):
            self.search.flush()
        self.connections.close()
