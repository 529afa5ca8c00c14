"""The work on one item, done in a worker thread: read it, look up each step's answer in the
cache, and ask the model for the rest (fitting the text into the context, one server slot
at a time, retrying what is worth retrying). Nothing here writes to the store."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.actions import Result
from pipeline.answers import Answer, Picture
from pipeline.backends import (
    Backend,
    Completion,
    ContextOverflow,
    NoVision,
    Rejected,
    Request,
    Transient,
)
from pipeline.drawing_steps import DrawStep
from pipeline.engine.drawing import Drawer
from pipeline.engine.inflight import InFlight
from pipeline.engine.items import Done, Item, Loaded
from pipeline.engine.options import Options
from pipeline.engine.retry import Interrupted, RetryPolicy
from pipeline.engine.slots import SlotGate
from pipeline.media import ImageError, image_extension, named_as, read_metadata
from pipeline.recipe import Recipe, Step
from pipeline.state import Store, now_iso
from pipeline.texts import NotText, decode, fit, hash_file, load_text

CONTEXT_MARGIN = 16  # tokens kept free for BOS/special tokens the server adds


class CannotRun(Exception):
    """The backend cannot do what the recipe asks (see images): no item can succeed."""


class ItemWork:
    def __init__(
        self,
        recipe: Recipe,
        backend: Backend,
        store: Store,
        options: Options,
        slots: SlotGate,
        retry: RetryPolicy,
        drawer: Drawer | None = None,
        on_answers: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
    ) -> None:
        assert backend.info is not None, "probe the backend before running"
        self.recipe = recipe
        self.backend = backend  # the text model's server (the image server for draw-only)
        self.info = backend.info
        self.model = self.info.model
        self.drawer = drawer
        self.on_answers = on_answers  # answers of steps before the last: saved at once
        self.store = store
        self.options = options
        self.slots = slots
        self.retry = retry
        self.stop = retry.stop
        self.unable: str | None = None  # why the backend cannot run this recipe at all
        self._capability = threading.Lock()
        self._vision_checked = False
        self._room_cache: dict[str, int] = {}
        self.shared = InFlight()

    def process(self, item: Item, seq: int) -> Done:
        started, started_at = time.monotonic(), now_iso()
        try:
            loaded = self._load(item)
        except NotText as e:
            return Done(item, Result(item.path, "skipped", notes=[str(e)]))
        except ImageError as e:
            return Done(item, Result(item.path, "failed", error=str(e)))
        except OSError as e:
            return Done(item, Result(item.path, "failed", error=f"cannot read: {e.strerror or e}"))
        result = Result(item.path, "cached", notes=list(loaded.notes), is_file=item.data is None)
        result.started = started_at
        result.fields = dict(loaded.fields)
        if item.data is not None:
            result.fields["text"] = loaded.text  # a line or stdin text: names its picture
        done = Done(item, result, hash=loaded.hash)
        answers: dict[str, Answer] = {}
        previous: Answer = ""
        last = self.recipe.steps[-1]
        for step in self.recipe.steps:
            if step.draws and self.options.dry_run:
                break  # a dry run shows what would be drawn; the real run reuses the prompts
            fingerprint = self._fingerprint(loaded.hash, step, answers, previous)
            answer = None if self.options.redo else self.store.cached_answer(fingerprint)
            if answer is None:
                answer = self.shared.take(fingerprint, self.stop)  # a twin just answered it
            if answer is None:
                try:
                    with self.shared.owning(fingerprint) as share:
                        if isinstance(step, DrawStep):
                            assert self.drawer is not None, "a drawing recipe needs an image server"
                            fields = {
                                **loaded.fields,
                                **self._fields(item, loaded.text, answers, previous),
                            }
                            answer = self.drawer.draw(step, item, fields, loaded.hash, result, seq)
                        else:
                            answer = self._ask(step, item, loaded, answers, previous, result, seq)
                        share(answer)
                except (ImageError, Rejected, Transient) as e:
                    result.status, result.error = "failed", str(e)
                    break
                result.status = "done"
                done.cache_rows.append(
                    {
                        "fingerprint": fingerprint,
                        "step": step.name,
                        "answer": answer,
                        "model": self.drawer.model if step.draws and self.drawer else self.model,
                        "prompt_tokens": result.prompt_tokens,
                        "completion_tokens": result.completion_tokens,
                        "duration_ms": ms_since(started, result.waited),
                    }
                )
                if step is not last:  # a crash before the next step must not cost this one
                    self.on_answers(done.cache_rows)
                    done.cache_rows = []
            answers[step.name] = previous = answer
            done.fingerprint = fingerprint
        if result.status != "failed":
            result.answer = previous
            result.fields.update(answers)
        result.duration_ms = ms_since(started, result.waited)
        return done

    # -- reading ------------------------------------------------------------------------
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

    def _fingerprint(
        self, content_hash: str, step: Step | DrawStep, answers: dict[str, Answer], previous: Answer
    ) -> str:
        """A step's cache key: its own settings, the model that answers it, and the inputs
        it uses. A drawing's key leaves out the text model and the settings of steps it
        does not read, so new drawing settings redraw without asking the text model again."""
        used = {f.name for f in step.prompt.fields}
        inputs = {n: _key_of(a) for n, a in answers.items() if n in used}
        if "answer" in used and answers:
            inputs["answer"] = _key_of(previous)
        if isinstance(step, DrawStep):
            assert self.drawer is not None
            # The content matters to img2img (the photo) and to a seed drawn from it.
            content = content_hash if step.kind == "img2img" or step.seed is None else None
            blob = json.dumps(
                ["draw", content, self.drawer.model, step.key(), inputs], sort_keys=True
            )
        else:
            blob = json.dumps([content_hash, self.model, step.key(), inputs], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _fields(
        self, item: Item, text: str, answers: dict[str, Answer], previous: Answer
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

    # -- asking -------------------------------------------------------------------------
    def _ask(
        self,
        step: Step,
        item: Item,
        loaded: Loaded,
        answers: dict[str, Answer],
        previous: Answer,
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

    def _room(
        self, step: Step, item: Item, answers: dict[str, Answer], previous: Answer
    ) -> int | None:
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
            if not self.slots.acquire(seq, self.stop):
                raise Interrupted
            result.waited += time.monotonic() - queued
            try:
                return self.retry.call(lambda: self._complete(request), result.count_attempt)
            finally:
                self.slots.release()
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
        with self._capability:  # one check at a time; the others wait for its verdict
            if self.unable is not None or self.stop.is_set():
                raise Interrupted  # the run is stopping; the reason is reported once
            if not self._vision_checked:
                try:
                    self.retry.call(self.backend.check_vision)
                except NoVision as e:
                    raise self._cannot_run(e) from None  # under the lock: nobody checks again
                self._vision_checked = True

    def _cannot_run(self, error: NoVision) -> Exception:
        """No file can succeed: the first worker to learn it stops the run and says why
        (Summary.error); the others just leave. Called holding `_capability`."""
        first = self.unable is None
        self.unable = self.unable or str(error)
        return CannotRun(str(error)) if first else Interrupted()


def _key_of(answer: Answer) -> str:
    return answer.sha256 if isinstance(answer, Picture) else answer


def ms_since(started: float, waited: float) -> int:
    return int((time.monotonic() - started - waited) * 1000)
