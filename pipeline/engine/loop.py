"""The run loop: stream items, skip finished ones, keep every server slot busy, record all.

The main thread walks the sources, decides skips (the ledger), hands items to worker
threads, and shows and records results in input order (every database write happens here).
Workers do the work on one item (work.py). Workers are daemon threads, so an interrupt never
waits for a slow model: claims of unfinished items are released, and the next run does them.
A Runner keeps nothing from one run to the next: it can run again.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pipeline.backends import Backend, ServerInfo
from pipeline.backends.lazy import LazyBackend
from pipeline.backends.pool import Pool
from pipeline.config import JOBS
from pipeline.engine.asking import Asker
from pipeline.engine.call import RunContext
from pipeline.engine.drawing import Drawer
from pipeline.engine.held import hold, let_go
from pipeline.engine.items import Done, Item, Rewalkable
from pipeline.engine.ledger import NOT_INPUT, Ledger
from pipeline.engine.options import Options, Summary
from pipeline.engine.retry import RetryPolicy
from pipeline.engine.slots import SlotGate
from pipeline.engine.work import ItemWork, start_workers
from pipeline.recipe import Recipe
from pipeline.renaming import moves
from pipeline.results import ActionError, Result, ResultSink
from pipeline.store.database import HEARTBEAT_SECONDS, Counts, Store

REORDER_WINDOW = 512  # items admitted but not yet shown, at most (bounds memory)
# Workers beyond the server's slots: they read, hash and shrink the next files while every
# slot is answering, so a slot never waits for pipe (a 24 MP photo takes ~150 ms to shrink).
READ_AHEAD = 2


class Runner:
    def __init__(
        self,
        recipe: Recipe,
        backend: Backend,
        store: Store,
        action: ResultSink,
        options: Options,
        images: Backend | None = None,
    ) -> None:
        """`backend` answers the recipe's text and vision steps (for a recipe that only
        draws, it is the image server); `images`, if the recipe draws, draws."""
        self.recipe = recipe
        self.backend = backend
        self.images = images
        self.store = store
        self.action = action
        self.options = self._options = options  # as given: each run wraps its messages
        self.info = backend.info
        image_model = images.info.image_model if images else ""
        self.ask_key = recipe.ask_key(self.info.model if recipe.asks else "", image_model)
        self.jobs = in_flight(options.jobs, self.info.slots)
        # One server for text and pictures (koboldcpp) runs one generation at a time: its
        # slots are shared. Two servers: while one draws, the other writes the next prompts.
        self.shared = images is None or images.url == backend.url
        self.image_slots = 0 if self.shared or images is None else in_flight(0, images.info.slots)
        self.threads = self.jobs + self.image_slots + READ_AHEAD

    def run(self, items: Iterable[Item], args: list[str]) -> Summary:
        """Raises DatabaseError (one line) if the store fails mid-run (a full disk): the run
        is ended as failed if the store still takes that, else the next run marks it died."""
        self._run_id: int | None = None  # set once the run and its ledger exist
        self.stop = threading.Event()
        self._held, self.options = hold(self.action, self._options)  # answers: a block at a time
        try:
            return self._run(items, args)
        except sqlite3.Error as e:
            self.stop.set()
            if self._run_id is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.store.end_run(self._run_id, "failed", 2, self.ledger.counts)
            raise self.store.explain(e) from None
        finally:
            let_go(self.action, self._held)

    def _run(self, items: Iterable[Item], args: list[str]) -> Summary:
        started = time.monotonic()
        pool = _pool(self.backend)
        answered_before = pool.answered() if pool else {}  # a pool opened later: none
        run_id = self._begin(args)
        workers = start_workers(self.threads, self._tasks, self._results, self.work, self.stop)
        self._bar = _progress(self.options.progress)
        self._counted: list[int] = []  # how many items there are, once a count is done
        self._walked = threading.Event()  # the run's own walk ended: it knows the number
        if self._bar is not None and isinstance(items, Rewalkable):
            count = (items, self.store, self._counted, self._walked, self.stop)
            threading.Thread(target=_count, args=count, daemon=True).start()
        previous_handlers = _catch_signals(self._on_signal)
        for outcome in moves.reconcile(self.store):  # a journal left by a killed run
            if self.options.on_info:
                self.options.on_info(f"journal: {outcome.old} -> {outcome.new}: {outcome.reason}")
        try:
            self._feed(iter(items), run_id)
            while self._in_workers > 0 and not self.stop.is_set():
                self._collect(block=True)
            self._collect(block=False)  # keep answers that arrived as we stopped
            self._flush(everything=True)
            if not self.stop.is_set():
                self._close_action(run_id)
        finally:
            _restore_signals(previous_handlers)
            for _ in workers:
                self._tasks.put(None)
            if self._bar is not None:
                self._bar.close()
        return self._end(run_id, started, _pool(self.backend), answered_before)

    def _begin(self, args: list[str]) -> int:
        """Start the run in the store and set up its ledger, queues and workers' context."""
        run_id = self.store.start_run(
            self.recipe.name,
            self.recipe.origin,
            args,
            _backend_name(self.info),
            self.info.model,
            dry_run=self.options.dry_run,
        )
        self._written_before = self.store.outputs_written
        self.stopped: str | None = None
        self.action_failed = False
        self.unable: str | None = None  # why no item can succeed (the run stopped for it)
        self.ledger = Ledger(self.store, self.recipe, run_id, self.ask_key, self.options)
        self._run_id = run_id
        o = self.options
        retry = RetryPolicy(o.retries, o.down_wait, o.busy_wait, o.backoff, stop=self.stop)
        slots = SlotGate(self.jobs)
        drawer = None
        if self.images is not None:
            image_slots = slots if self.shared else SlotGate(self.image_slots)
            drawer = Drawer(self.images, image_slots, retry)
        self._tasks: queue.Queue[tuple[int, Item] | None] = queue.Queue()
        # Workers hand back each item's Done, and before that the answers of its earlier
        # steps (a list of cache rows), saved at once.
        self._results: queue.Queue[tuple[int, Done | list[dict[str, Any]]]] = queue.Queue()
        asker = Asker(self.backend, slots, retry)
        context = RunContext(self.recipe, self.store, o, asker, drawer, self._answers_ready)
        self.work = ItemWork(context)
        # Results are recorded and shown in input order: `pending` holds each admitted item
        # (None while a worker has it) until every earlier item is out.
        self._pending: dict[int, Done | Result | None] = {}
        self._deferred: list[Done] = []
        self._next_out = 0
        self._in_workers = 0
        return run_id

    def _end(
        self, run_id: int, started: float, pool: Pool | None, answered_before: dict[str, int]
    ) -> Summary:
        counts = self.ledger.counts
        exit_code = _exit_code(self.stopped, bool(counts.failed) or self.action_failed)
        status = RUN_STATUS.get(exit_code, "interrupted")
        self.store.end_run(run_id, status, exit_code, counts)
        answered: dict[str, int] = {}
        if pool is not None:
            answered = {url: n - answered_before.get(url, 0) for url, n in pool.answered().items()}
            self.store.set_run_backends(run_id, answered)
        seconds = time.monotonic() - started
        unable = self.work.unable or self.unable
        summary = Summary(run_id, counts, seconds, exit_code, self.stopped, unable)
        summary.backends = answered
        return summary

    def _feed(self, items: Iterator[Item], run_id: int) -> None:
        seq = 0
        last_beat = time.monotonic()
        while not self.stop.is_set():
            if self._in_workers:  # else nothing can come back (a finished folder: every item)
                self._collect(block=False)
            # One queued item per worker beyond those running keeps every slot busy.
            if self._in_workers >= self.threads * 2 or seq - self._next_out >= REORDER_WINDOW:
                self._collect(block=True)
                continue
            item = next(items, None)
            if item is None:
                self._walked.set()
                if self._bar is not None and self._bar.total != seq:
                    _set_total(self._bar, seq)  # exact now, whatever a count said
                return
            done = self.ledger.admit(item)
            if done is NOT_INPUT:
                continue
            if done is None:
                self._pending[seq] = None
                self._tasks.put((seq, item))
                self._in_workers += 1
            elif seq == self._next_out:  # nothing before it waits: out at once (a re-check)
                self._finish(done)
                self._next_out += 1
            else:
                self._pending[seq] = done  # out once the items before it are
            seq += 1
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                self.store.heartbeat(run_id, self.ledger.counts)
                last_beat = time.monotonic()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: leave now
        self.stopped = signal.Signals(signum).name
        self.stop.set()
        threading.Thread(target=self.backend.abort_running, daemon=True).start()

    def _answers_ready(self, rows: list[dict[str, Any]]) -> None:
        """A worker's answers of an item's earlier steps: the main thread saves them."""
        self._results.put((-1, list(rows)))

    def _collect(self, block: bool) -> None:
        """Take finished work from the workers (waiting a little for one if `block`)."""
        if block and self._held is not None:
            self._held.release()  # what is shown so far, before waiting
        while True:
            try:
                seq, done = self._results.get(timeout=0.1) if block else self._results.get_nowait()
            except queue.Empty:
                return
            block = False
            if isinstance(done, list):
                self.store.save_answers(done)
                continue
            self._in_workers -= 1
            if done.fatal:
                self.stopped = self.stopped or done.stop_reason
                if done.stop_reason in ("unable", "usage"):
                    self.unable = self.unable or done.fatal
                self.stop.set()
                del self._pending[seq]
                self.ledger.release(done.item)
                if done.stop_reason == "backend" and self.options.on_error:
                    self.options.on_error(Result(done.item.path, "failed", error=done.fatal))
                continue
            self._pending[seq] = done
            self._flush()

    def _flush(self, everything: bool = False) -> None:
        while self._next_out in self._pending and self._pending[self._next_out] is not None:
            done = self._pending.pop(self._next_out)
            assert done is not None
            self._finish(done)
            self._next_out += 1
        if everything:  # stopping: record whatever finished, in any order
            for seq in sorted(self._pending):
                done = self._pending.pop(seq)
                if done is not None:
                    self._finish(done)

    def _finish(self, done: Done | Result) -> None:
        """Show an item's result (the action) and record it; a bare Result is settled in
        the store already (a finished or busy file): shown and counted, not recorded."""
        result = done if isinstance(done, Result) else done.result
        self.action.apply(result)  # may turn a result into a failure (e.g. sidecar refused)
        self._count_written()
        if self._bar is not None:
            if self._bar.total is None and self._counted:
                _set_total(self._bar, self._counted[0])
            self._bar.update(1)
        if done is result:
            _count_settled(self.ledger.counts, result, self.options.on_error)
        elif result.deferred:  # finished by the action at the end (renames)
            self.ledger.save_answers(done)
            self._deferred.append(done)
        else:
            self.ledger.record(done)

    def _close_action(self, run_id: int) -> None:
        """Let the action finish what it deferred (plan and apply renames), then record it.
        What it could not finish (a contact sheet whose place is taken) is one line and
        fails the run; the items are recorded all the same."""
        try:
            self.action.close(run_id)
        except ActionError as e:
            self.action_failed = True
            if self.options.on_error:
                self.options.on_error(Result(self.action.name, "failed", error=str(e)))
        self._count_written()  # contact sheet pages
        for done in self._deferred:
            self.ledger.record(done)
            self.ledger.adopt_renamed(done)

    def _count_written(self) -> None:
        self.ledger.counts.written = self.store.outputs_written - self._written_before


def _count(
    items: Rewalkable,
    store: Store,
    counted: list[int],
    walked: threading.Event,
    stop: threading.Event,
) -> None:
    """Walk the sources again, only counting, for the progress bar's total: the run's
    own walk stays a few items ahead of the work, so it knows the number only at the
    end. Stops when the run's walk ends first."""
    n = 0
    for item in items.again():
        if walked.is_set() or stop.is_set():
            return
        # Not the files pipe wrote, as Ledger.admit: they are never inputs.
        file = item.data is None and item.entry.stat is not None
        if not (file and store.is_output(item.entry.key)):
            n += 1
    counted.append(n)


def _count_settled(
    counts: Counts, result: Result, on_error: Callable[[Result], None] | None
) -> None:
    """A file settled before this run: skipped, unless the action could not serve it (its
    sidecar refused), a failure of this run said as one; the file stays finished and the
    next run tries the action again."""
    counts.count("failed" if result.status == "failed" else "skipped")
    if result.status == "failed" and on_error:
        on_error(result)


RUN_STATUS = {0: "done", 1: "failed", 2: "usage", 3: "backend-down"}  # by exit code


def _exit_code(stopped: str | None, failed: bool) -> int:
    if stopped == "usage":
        return 2
    if stopped in ("backend", "unable"):
        return 3
    if stopped:
        return 128 + (signal.SIGTERM if stopped == "SIGTERM" else signal.SIGINT)
    return 1 if failed else 0


def in_flight(jobs: int, slots: int | None) -> int:
    """Requests kept in flight (each a worker thread): -j, else what the server says it
    serves at once. A server's word is bounded as -j is: total_slots 10**9 is not as many
    threads."""
    return min(jobs or slots or 1, int(JOBS.high))


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="file", file=sys.stderr, dynamic_ncols=True, leave=False)


def _set_total(bar: Any, total: int) -> None:
    """Give the bar its total (and so its ETA) once the number of items is known."""
    bar.total = total
    bar.refresh()


def _pool(backend: Backend) -> Pool | None:
    """The pool behind `backend`, once it is open (a pool known from last time opens when
    an item first needs an answer)."""
    if isinstance(backend, LazyBackend):
        backend = backend.opened or backend
    return backend if isinstance(backend, Pool) else None


def _backend_name(info: ServerInfo) -> str:
    """The run's server as `pipe runs` shows it: the embedded model by its name, not by the
    loopback port it had for that one run."""
    if info.kind == "embedded model":
        return f"embedded ({info.model.removesuffix('.gguf')})"
    return info.url


def _catch_signals(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
