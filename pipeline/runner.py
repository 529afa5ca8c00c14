"""The map engine: stream items, skip finished ones, keep every server slot busy, record all.

The main thread walks the sources, decides skips from the store, claims items, and records
results (every database write happens here). Worker threads read and hash files, look up
the answer cache, and call the model with retries. Workers are daemon threads, so an
interrupt never waits for a slow model: claims of unfinished items are released, and the
next run does them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pipeline import renames
from pipeline.actions import Action, Result
from pipeline.backends import (
    Backend,
    Busy,
    Completion,
    ContextOverflow,
    NoVision,
    Rejected,
    Request,
    Transient,
    Unreachable,
)
from pipeline.media import ImageError, image_extension, named_as, prepare_image, read_metadata
from pipeline.paths import display_path
from pipeline.recipe import Recipe, Step
from pipeline.sources import Entry
from pipeline.state import HEARTBEAT_SECONDS, Counts, Store, now_iso
from pipeline.texts import NotText, decode, fit, hash_file, load_text

_T = TypeVar("_T")
STDIN_PATH = "<stdin>"
CONTEXT_MARGIN = 16  # tokens kept free for BOS/special tokens the server adds
REORDER_WINDOW = 512  # items admitted but not yet shown, at most (bounds memory)
# Workers beyond the server's slots: they read, hash and shrink the next files while every
# slot is answering, so a slot never waits for pipe (a 24 MP photo takes ~150 ms to shrink).
READ_AHEAD = 2


@dataclass
class Options:
    jobs: int = 0  # 0: the server's slot count
    redo: bool = False
    retries: int = 3  # further attempts after the first, for each model call
    down_wait: float = 30.0  # how long a backend may be unreachable mid-run before we stop
    busy_wait: float = 300.0  # how long to keep retrying "busy"/"loading" answers
    dry_run: bool = False  # show what would happen; change no file and finish no item
    backoff: float = 0.5
    progress: bool = False
    on_error: Callable[[Result], None] | None = None  # a per-item failure, for stderr
    on_note: Callable[[Result], None] | None = None  # a file skipped for a reason
    on_info: Callable[[str], None] | None = None


@dataclass
class Summary:
    run_id: int
    counts: Counts
    seconds: float
    exit_code: int
    stopped: str | None = None  # why the run ended early: a signal, "backend" or "unable"
    error: str | None = None  # with "unable": why the backend cannot run this recipe


@dataclass
class Item:
    entry: Entry
    data: bytes | None = None  # text given on stdin instead of a file

    @property
    def path(self) -> str:
        return self.entry.path


class BackendDown(Exception):
    pass


class CannotRun(Exception):
    """The backend cannot do what the recipe asks (see images): no item can succeed."""


class Interrupted(Exception):
    pass


@dataclass
class Loaded:
    """What a worker read from one item."""

    hash: str
    notes: list[str] = field(default_factory=list)
    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # exif, real extension
    _images: dict[int, bytes] = field(default_factory=dict)

    def image(self, path: str, size: int) -> bytes:
        """The upload JPEG, made once per size on first need (never for cache hits)."""
        if size not in self._images:  # prepare_image holds the shared pixel budget
            self._images[size] = prepare_image(path, max_side=size).jpeg
        return self._images[size]


@dataclass
class _Done:
    item: Item
    result: Result
    hash: str | None = None
    fingerprint: str | None = None
    cache_rows: list[dict[str, Any]] = field(default_factory=list)
    fatal: str | None = None  # the run must stop: why
    stop_reason: str = "backend"  # with `fatal`: "backend" (went away) or "unable"
    record: bool = True  # False: already settled in the store (a skip), only shown


class Runner:
    def __init__(
        self, recipe: Recipe, backend: Backend, store: Store, action: Action, options: Options
    ) -> None:
        self.recipe = recipe
        self.backend = backend
        self.store = store
        self.action = action
        self.options = options
        assert backend.info is not None, "probe the backend before running"
        self.info = backend.info
        self.model = self.info.model
        self.ask_key = recipe.ask_key(self.model)
        self.jobs = options.jobs or self.info.slots or 1
        self.threads = self.jobs + READ_AHEAD
        self._slots = SlotGate(self.jobs)  # model calls in flight
        self.counts = Counts()
        self.stop = threading.Event()
        self.stopped: str | None = None
        self._capability = threading.Lock()
        self._vision_checked = False
        self._unable: str | None = None  # why the backend cannot run this recipe at all
        self._tasks: queue.Queue[tuple[int, Item] | None] = queue.Queue()
        self._results: queue.Queue[tuple[int, _Done]] = queue.Queue()
        self._room_cache: dict[str, int] = {}

    # -- main thread --------------------------------------------------------------------
    def run(self, items: Iterable[Item], args: list[str]) -> Summary:
        started = time.monotonic()
        self.run_id = self.store.start_run(
            self.recipe.name, self.recipe.origin, args, self.info.url, self.model
        )
        workers = [
            threading.Thread(target=self._work, daemon=True, name=f"pipe-worker-{i}")
            for i in range(self.threads)
        ]
        for w in workers:
            w.start()
        self._bar = _progress(self.options.progress)
        previous_handlers = _catch_signals(self._on_signal)
        # Results are recorded and shown in input order: `pending` holds each admitted item
        # (None while a worker has it) until every earlier item is out.
        self._pending: dict[int, _Done | None] = {}
        self._deferred: list[_Done] = []
        for outcome in renames.reconcile(self.store):  # a journal left by a killed run
            if self.options.on_info:
                self.options.on_info(f"journal: {outcome.old} -> {outcome.new}: {outcome.reason}")
        self._next_out = 0
        self._in_workers = 0
        seq = 0
        last_beat = time.monotonic()
        try:
            iterator: Iterator[Item] = iter(items)
            while not self.stop.is_set():
                self._collect(block=False)
                # One queued item per worker beyond those running keeps every slot busy.
                if self._in_workers >= self.threads * 2 or seq - self._next_out >= REORDER_WINDOW:
                    self._collect(block=True)
                    continue
                item = next(iterator, None)
                if item is None:
                    break
                if self._written_by_pipe(item):
                    continue
                done = self._admit(item)
                self._pending[seq] = done
                if done is None:
                    self._tasks.put((seq, item))
                    self._in_workers += 1
                seq += 1
                self._flush()
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    self.store.heartbeat(self.run_id, self.counts)
                    last_beat = time.monotonic()
            while self._in_workers > 0 and not self.stop.is_set():
                self._collect(block=True)
            self._collect(block=False)  # keep answers that arrived as we stopped
            self._flush(everything=True)
            if not self.stop.is_set():
                self._close_action()
        finally:
            _restore_signals(previous_handlers)
            for _ in workers:
                self._tasks.put(None)
            if self._bar is not None:
                self._bar.close()
        exit_code = self._exit_code()
        status = {0: "done", 1: "failed", 3: "backend-down"}.get(exit_code, "interrupted")
        self.store.end_run(self.run_id, status, exit_code, self.counts)
        return Summary(
            self.run_id,
            self.counts,
            time.monotonic() - started,
            exit_code,
            self.stopped,
            self._unable,
        )

    def _exit_code(self) -> int:
        if self.stopped in ("backend", "unable"):
            return 3
        if self.stopped:
            return 128 + (signal.SIGTERM if self.stopped == "SIGTERM" else signal.SIGINT)
        return 1 if self.counts.failed else 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: leave now
        self.stopped = signal.Signals(signum).name
        self.stop.set()
        abort = getattr(self.backend, "abort_running", None)
        if abort:
            threading.Thread(target=abort, daemon=True).start()

    def _written_by_pipe(self, item: Item) -> bool:
        """A sidecar (or XMP) that pipe wrote is never an input: else each cron run would
        summarize the last run's summaries (a.md.summary.txt.summary.txt ...). Its path
        stays pipe's even when edited by hand, as pipe then refuses to overwrite it."""
        if item.data is not None or item.entry.stat is None:
            return False
        return self.store.output_digest(item.entry.key) is not None

    def _admit(self, item: Item) -> _Done | None:
        """Decide from the store whether an item needs work (None: claimed, send it to a
        worker) or is already settled (a result to show, nothing to record)."""
        entry = item.entry
        if entry.error:
            return _Done(item, Result(entry.path, "failed", error=entry.error))
        if item.data is not None:
            return None  # stdin text: no file to track, the answer cache still applies
        st = entry.stat
        assert st is not None
        key = entry.key
        row, answer = self.store.item_and_answer(self.recipe.name, key)
        if not (
            row
            and not self.options.redo
            and row.is_finished(st.st_size, st.st_mtime_ns, self.ask_key)
        ):
            verdict, row = self.store.claim(
                self.recipe.name,
                key,
                self.run_id,
                st.st_size,
                st.st_mtime_ns,
                self.ask_key,
                self.options.redo,
            )
            if verdict == "claimed":
                return None
            if verdict == "busy":
                result = Result(item.path, "skipped", notes=["another run is processing it"])
                return _Done(item, result, record=False)
            answer = self.store.cached_answer(row.fingerprint) if row and row.fingerprint else None
        assert row is not None
        if row.status != "done":
            answer = None
        notes = [row.reason] if row.reason else []
        return _Done(item, Result(item.path, "skipped", answer=answer, notes=notes), record=False)

    def _collect(self, block: bool) -> None:
        """Take finished work from the workers (waiting a little for one if `block`)."""
        while True:
            try:
                seq, done = self._results.get(timeout=0.1) if block else self._results.get_nowait()
            except queue.Empty:
                return
            block = False
            self._in_workers -= 1
            if done.fatal:
                self.stopped = self.stopped or done.stop_reason
                self.stop.set()
                del self._pending[seq]
                self.store.release(self.recipe.name, done.item.entry.key, self.run_id)
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

    def _finish(self, done: _Done) -> None:
        result = done.result
        self.action.apply(result)  # may turn a result into a failure (e.g. sidecar refused)
        if self._bar is not None:
            self._bar.update(1)
        if not done.record:
            self.counts.skipped += 1
            return
        if result.deferred:
            # Finished by the action at the end (renames). Keep the answers now, so a run
            # killed before then costs no model time again.
            self.store.save_answers(done.cache_rows)
            done.cache_rows = []
            self._deferred.append(done)
            return
        self._record(done)

    def _close_action(self) -> None:
        """Let the action finish what it deferred (plan and apply renames), then record it."""
        self.action.close(self.run_id)
        for done in self._deferred:
            self._record(done)
            result, stat = done.result, done.item.entry.stat
            if result.new_path and stat is not None and result.status == "done":
                self.store.adopt(
                    self.recipe.name,
                    display_path(result.new_path),
                    self.run_id,
                    stat.st_size,
                    stat.st_mtime_ns,
                    done.hash,
                    self.ask_key,
                    done.fingerprint,
                )

    def _record(self, done: _Done) -> None:
        result = done.result
        if result.forget_answer and done.fingerprint:
            self.store.forget_answer(done.fingerprint)
        status = {"done": "done", "cached": "done", "skipped": "skipped"}.get(
            result.status, "failed"
        )
        if (self.options.dry_run and status == "done") or result.status == "planned":
            status = "pending"  # previewed, not done: the real run does it (from the cache)
        counter = {"done": "done", "cached": "cached", "skipped": "skipped", "planned": "done"}.get(
            result.status, "failed"
        )
        setattr(self.counts, counter, getattr(self.counts, counter) + 1)
        self.counts.prompt_tokens += result.prompt_tokens or 0
        self.counts.completion_tokens += result.completion_tokens or 0
        entry = done.item.entry
        if result.status == "failed" and self.options.on_error:
            self.options.on_error(result)
        elif result.status == "skipped" and self.options.on_note:
            self.options.on_note(result)  # first seen: say why (empty, binary…) once
        history = {
            "status": result.status,
            "fingerprint": done.fingerprint,
            "error": result.error,
            "note": "; ".join(result.notes) or None,
            "started": result.started or now_iso(),
            "duration_ms": result.duration_ms,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
            "meta": _meta(result.fields),
        }
        if entry.stat is None or done.item.data is not None:
            # Not a tracked file (a bad argument, or stdin text): history and cache only.
            path = STDIN_PATH if done.item.data is not None else entry.key
            self.store.record_untracked(
                self.run_id, self.recipe.name, path, history, done.cache_rows
            )
        else:
            self.store.finish(
                self.recipe.name,
                entry.key,
                self.run_id,
                status=status,
                size=entry.stat.st_size,
                mtime_ns=entry.stat.st_mtime_ns,
                hash=done.hash,
                ask_key=self.ask_key,
                fingerprint=done.fingerprint if status == "done" else None,
                reason=result.error or ("; ".join(result.notes) if status == "skipped" else None),
                attempts=result.attempts,
                history=history,
                cache_rows=done.cache_rows,
            )

    # -- worker threads -----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            seq, item = task
            if self.stop.is_set():
                continue  # interrupted: leave it for the next run
            try:
                done = self._process(item, seq)
            except Interrupted:
                continue
            except BackendDown as e:
                done = _Done(item, Result(item.path, "failed"), fatal=str(e))
            except CannotRun as e:
                done = _Done(item, Result(item.path, "failed"), fatal=str(e), stop_reason="unable")
            except Exception as e:  # a bug must cost one item, not the run
                done = _Done(item, Result(item.path, "failed", error=f"internal error: {e!r}"))
            self._results.put((seq, done))

    def _process(self, item: Item, seq: int) -> _Done:
        started, started_at = time.monotonic(), now_iso()
        try:
            loaded = self._load(item)
        except NotText as e:
            return _Done(item, Result(item.path, "skipped", notes=[str(e)]))
        except ImageError as e:
            return _Done(item, Result(item.path, "failed", error=str(e)))
        except OSError as e:
            return _Done(item, Result(item.path, "failed", error=f"cannot read: {e.strerror or e}"))
        result = Result(item.path, "cached", notes=list(loaded.notes), is_file=item.data is None)
        result.started = started_at
        result.fields = dict(loaded.fields)
        done = _Done(item, result, hash=loaded.hash)
        answers: dict[str, str] = {}
        previous = ""
        for step in self.recipe.steps:
            fingerprint = self._fingerprint(loaded.hash, step, answers)
            answer = None if self.options.redo else self.store.cached_answer(fingerprint)
            if answer is None:
                try:
                    answer = self._ask(step, item, loaded, answers, previous, result, seq)
                except ImageError as e:
                    result.status, result.error = "failed", str(e)
                    break
                except (Rejected, Transient) as e:
                    result.status, result.error = "failed", str(e)
                    break
                result.status = "done"
                done.cache_rows.append(
                    {
                        "fingerprint": fingerprint,
                        "step": step.name,
                        "answer": answer,
                        "model": self.model,
                        "prompt_tokens": result.prompt_tokens,
                        "completion_tokens": result.completion_tokens,
                        "duration_ms": _ms_since(started, result.waited),
                    }
                )
            answers[step.name] = previous = answer
            done.fingerprint = fingerprint
        else:
            result.answer = previous
            result.fields.update(answers)
        result.duration_ms = _ms_since(started, result.waited)
        return done

    def _load(self, item: Item) -> Loaded:
        if self.recipe.needs_image:
            if item.data is not None:
                raise ImageError("this recipe needs image files, not text on stdin")
            return self._load_image_item(item)
        max_bytes = max(64 * 1024, (self.info.n_ctx or 32768) * 16)
        text = decode(item.data) if item.data is not None else load_text(item.path, max_bytes)
        return Loaded(hash=text.hash, notes=text.notes, text=text.text)

    def _load_image_item(self, item: Item) -> Loaded:
        """Hash and EXIF only: the image is decoded later, and only if the model is asked."""
        path = item.path
        real = image_extension(path)
        mtime = item.entry.stat.st_mtime if item.entry.stat else None
        fields = {
            "exif": read_metadata(path).fields(mtime, prefer=self.recipe.date),
            "ext": real,
        }
        notes = []
        if not named_as(path, real):
            notes.append(f"content is {real[1:].upper()}, name says {os.path.splitext(path)[1]}")
        return Loaded(hash=hash_file(path), notes=notes, fields=fields)

    def _fingerprint(self, content_hash: str, step: Step, answers: dict[str, str]) -> str:
        blob = json.dumps([content_hash, self.model, step.key(), answers], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _fields(
        self, item: Item, text: str, answers: dict[str, str], previous: str
    ) -> dict[str, Any]:
        name = os.path.basename(item.path) if item.data is None else ""
        stem, ext = os.path.splitext(name)
        return {
            "text": text,
            "name": name,
            "path": item.path if item.data is None else "",
            "stem": stem,
            "ext": ext,
            "answer": previous,
            **answers,
        }

    def _ask(
        self,
        step: Step,
        item: Item,
        loaded: Loaded,
        answers: dict[str, str],
        previous: str,
        result: Result,
        seq: int,
    ) -> str:
        """One model call for one step: fit the text, retry what is worth retrying."""
        uses_text = any(f.name == "text" for f in step.prompt.fields)
        text = loaded.text
        room = self._room(step, item, answers, previous) if uses_text else None
        overflow_tries = 0
        while True:
            if room is not None:
                text, note = fit(loaded.text, room, self.backend.count_tokens)
                if note and note not in result.notes:
                    result.notes.append(note)
                if not text.strip():
                    raise Rejected(note or "no room for the text in the model's context")
            prompt = step.prompt.render(
                {**loaded.fields, **self._fields(item, text, answers, previous)}
            )
            request = Request(
                prompt=prompt,
                system=step.system,
                max_tokens=step.max_tokens,
                temperature=step.temperature,
                repeat_penalty=step.repeat_penalty,
                stop=step.stop,
                grammar=step.grammar,
                format=step.format,
                images=(loaded.image(item.path, step.image_size),) if step.kind == "vision" else (),
            )
            try:
                completion = self._call(request, result, seq)
            except ContextOverflow as e:
                overflow_tries += 1
                if overflow_tries > 3 or not uses_text:
                    raise
                # The server counted for us: shrink the text by the amount it overflowed.
                budget = (e.n_ctx or self.info.n_ctx or 2048) - step.max_tokens - CONTEXT_MARGIN
                excess = (e.prompt_tokens or 0) - budget
                current = room if room is not None else len(text.encode())
                room = max(0, current - max(excess, current // 4) - CONTEXT_MARGIN)
                continue
            result.prompt_tokens = (result.prompt_tokens or 0) + (completion.prompt_tokens or 0)
            result.completion_tokens = (result.completion_tokens or 0) + (
                completion.completion_tokens or 0
            )
            return completion.text.strip()

    def _room(self, step: Step, item: Item, answers: dict[str, str], previous: str) -> int | None:
        """Tokens left for `{text}` once the prompt around it and the answer are counted."""
        n_ctx = self.info.n_ctx
        if not n_ctx:
            return None
        key = step.name + (
            item.path if any(f.name in ("name", "path", "stem") for f in step.prompt.fields) else ""
        )
        if key not in self._room_cache or answers:
            empty = step.prompt.render(self._fields(item, "", answers, previous))
            wrapped, _ = self.backend.raw_prompt(
                Request(prompt=empty, system=step.system, format=step.format)
            )
            overhead = self.backend.count_tokens(wrapped) or len(wrapped.encode())
            room = n_ctx - step.max_tokens - overhead - CONTEXT_MARGIN
            if answers:
                return room
            self._room_cache[key] = room
        return self._room_cache[key]

    def _call(self, request: Request, result: Result, seq: int) -> Completion:
        """A model call once a server slot is free; until then this worker waits, its input
        ready, while the others prepare theirs."""
        try:
            if request.images:
                self._check_vision_once()
            queued = time.monotonic()
            if not self._slots.acquire(seq, self.stop):
                raise Interrupted
            result.waited += time.monotonic() - queued
            try:
                return self._call_with_retries(lambda: self._complete(request), result)
            finally:
                self._slots.release()
        except NoVision as e:
            with self._capability:
                raise self._cannot_run(e) from None

    def _complete(self, request: Request) -> Completion:
        completion = self.backend.complete(request)
        if not completion.text.strip():
            raise Transient("the model gave an empty answer")
        return completion

    def _check_vision_once(self) -> None:
        """Before the first image goes out, and never in a run that asks the model nothing
        (a re-run of a finished folder, the real run after a dry run): can the server see?"""

        def check() -> bool:
            self.backend.check_vision()
            return True

        with self._capability:  # one check at a time; the others wait for its verdict
            if self._unable is not None or self.stop.is_set():
                raise Interrupted  # the run is stopping; the reason is reported once
            if not self._vision_checked:
                try:
                    self._call_with_retries(check, Result("", "cached"))
                except NoVision as e:
                    raise self._cannot_run(e) from None  # under the lock: nobody checks again
                self._vision_checked = True

    def _cannot_run(self, error: NoVision) -> Exception:
        """No file can succeed: the first worker to learn it stops the run and says why
        (Summary.error); the others just leave. Called holding `_capability`."""
        first = self._unable is None
        self._unable = self._unable or str(error)
        return CannotRun(str(error)) if first else Interrupted()

    def _call_with_retries(self, call: Callable[[], _T], result: Result) -> _T:
        attempts = 0
        busy_since: float | None = None
        down_since: float | None = None
        while True:
            if self.stop.is_set():
                raise Interrupted
            result.attempts += 1
            try:
                return call()
            except ContextOverflow:
                raise
            except Unreachable as e:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > self.options.down_wait:
                    raise BackendDown(
                        f"{e} (for {self.options.down_wait:.0f} s); stopping"
                    ) from None
                self._sleep(min(2.0, self.options.backoff * 2))
            except Busy:
                # Busy or loading: not this item's fault; keep trying for a while.
                down_since = None
                busy_since = busy_since or time.monotonic()
                if time.monotonic() - busy_since > self.options.busy_wait:
                    raise
                self._sleep(self._delay(min(attempts + 1, 5)))
            except Transient as e:
                down_since = None
                attempts += 1
                if attempts > self.options.retries:
                    raise Transient(f"{e} (after {result.attempts} attempts)") from None
                self._sleep(self._delay(attempts))

    def _delay(self, attempt: int) -> float:
        base = self.options.backoff * 2 ** (attempt - 1)
        return min(base, 30.0) * random.uniform(0.75, 1.25)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Interrupted


class SlotGate:
    """At most `slots` model calls at once. A freed slot goes to the earliest item in input
    order among those ready and waiting, not to whichever thread wakes first: answers then
    come in the order they are shown, and an item still being prepared holds up nobody."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[int] = []  # a heap of the waiting items' input positions
        self._changed = threading.Condition()

    def acquire(self, position: int, stop: threading.Event) -> bool:
        """Wait for a slot; False if `stop` is set first."""
        with self._changed:
            heapq.heappush(self._waiting, position)
            while not (self._free and self._waiting[0] == position):
                if stop.is_set():
                    self._waiting.remove(position)
                    heapq.heapify(self._waiting)
                    self._changed.notify_all()
                    return False
                self._changed.wait(0.25)
            heapq.heappop(self._waiting)
            self._free -= 1
            self._changed.notify_all()  # with slots to spare, the next in line goes too
            return True

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()


def _meta(fields: dict[str, Any]) -> str | None:
    """What `pipe show` tells about a photo besides the answer: its date and where that came
    from (EXIF, XMP or the file's time), its camera and place."""
    exif = fields.get("exif")
    if not isinstance(exif, dict):
        return None
    meta: dict[str, str] = {}
    if isinstance(exif.get("date"), datetime):
        meta["date"] = f"{exif['date']:%Y-%m-%d %H:%M:%S} (from {exif.get('date_source')})"
    for key in ("camera", "gps"):
        if exif.get(key):
            meta[key] = str(exif[key])
    return json.dumps(meta, ensure_ascii=False) if meta else None


def _ms_since(started: float, waited: float) -> int:
    return int((time.monotonic() - started - waited) * 1000)


def file_items(entries: Iterable[Entry]) -> Iterator[Item]:
    for entry in entries:
        yield Item(entry)


def stdin_item(data: bytes) -> Item:
    return Item(Entry(STDIN_PATH), data=data)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="file", file=sys.stderr, dynamic_ncols=True, leave=False)


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
