"""A text or vision step for one item, in a worker thread: the prompt fitted into the
model's context, the image checked for once (can the server see?), one server slot at a
time, retried by the run's policy."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline import server_text
from pipeline.backends import (
    Backend,
    Completion,
    ContextOverflow,
    Rejected,
    Request,
    Transient,
    Unsuitable,
)
from pipeline.engine.retry import Interrupted, RetryPolicy
from pipeline.engine.slots import SlotGate
from pipeline.hints import FIELDS as HINT_FIELDS
from pipeline.results import Result
from pipeline.texts import fit

if TYPE_CHECKING:
    from pipeline.engine.call import StepCall
    from pipeline.steps.text import TextStep

CONTEXT_MARGIN = 16  # tokens kept free for BOS/special tokens the server adds
# Fields whose value differs from item to item (besides `{text}` and the answers).
_PER_ITEM = {"name", "path", "stem", "exif", *HINT_FIELDS}


class CannotRun(Exception):
    """The backend cannot do what the recipe asks (see images): no item can succeed."""

    stop_reason = "unable"  # the run ends with exit 3: this backend cannot run the recipe


class PersonaTooBig(CannotRun):
    """The recipe's card cannot fit the model's context: the user's choice to change (exit 2)."""

    stop_reason = "usage"


class Asker:
    def __init__(self, backend: Backend, slots: SlotGate, retry: RetryPolicy) -> None:
        self.backend = backend
        self.info = backend.info
        self.slots = slots
        self.retry = retry
        self.stop = retry.stop
        self.unable: str | None = None  # why the backend cannot run this recipe at all
        self._capability = threading.Lock()
        self._vision_checked = False
        self._room_cache: dict[str, int] = {}
        self._personas_fit: set[str] = set()  # steps whose persona is known to fit

    def ask(self, step: TextStep, call: StepCall) -> str:
        """One model call for one step: fit the text, retry what is worth retrying."""
        if step.persona is not None and step.name not in self._personas_fit:
            self._check_persona_fits(step)
        uses_text = any(f.name == "text" for f in step.prompt.fields)
        loaded, result = call.loaded, call.result
        text = loaded.text
        room = self._room(step, call) if uses_text else None
        overflow_tries = 0
        while True:
            if room is not None:
                text, note = fit(loaded.text, room, self.backend.count_tokens)
                if note and note not in result.notes:
                    result.notes.append(note)
                if not text.strip():
                    raise Rejected(note or "no room for the text in the model's context")
            values = call.fields(text)
            request = Request(
                prompt=step.prompt_text(step.prompt.render(values)),
                system=step.system_text(values),
                max_tokens=step.max_tokens,
                temperature=step.temperature,
                repeat_penalty=step.repeat_penalty,
                stop=step.stop,
                grammar=step.grammar_text(),
                format=step.format,
                images=step.images(call),
            )
            try:
                completion = self._call(request, result, call.seq)
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

    def _room(self, step: TextStep, call: StepCall) -> int | None:
        """Tokens left for `{text}` once the prompt around it and the answer are counted."""
        n_ctx = self.info.n_ctx
        if not n_ctx:
            return None
        # The room is the same for every item unless the text around `{text}` is the item's.
        fields = {f.name.partition(".")[0] for t in step.templates() for f in t.fields}
        names = bool(fields & _PER_ITEM)
        key = step.name + (call.item.path if names else "")
        if key not in self._room_cache or call.answers:
            values = call.fields("")
            empty = step.prompt_text(step.prompt.render(values))
            wrapped, _ = self.backend.raw_prompt(
                Request(prompt=empty, system=step.system_text(values), format=step.format)
            )
            overhead = self.backend.count_tokens(wrapped) or len(wrapped.encode())
            room = n_ctx - step.max_tokens - overhead - CONTEXT_MARGIN
            if call.answers:
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
        except Unsuitable as e:  # no vision, or (cli:) a model that cannot load
            with self._capability:
                raise self._cannot_run(e) from None

    def _complete(self, request: Request) -> Completion:
        # Every backend's answer enters pipe here: made valid before anything stores it.
        completion = self.backend.complete(request)
        completion = replace(completion, text=server_text.valid(completion.text))
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
                except Unsuitable as e:
                    raise self._cannot_run(e) from None  # under the lock: nobody checks again
                self._vision_checked = True

    def _check_persona_fits(self, step: TextStep) -> None:
        """A server started lazily (the embedded model, `--model`) says its context only
        now: a card too big for it stops the run before its first request."""
        with self._capability:
            if step.name in self._personas_fit:
                return
            problem = persona_overflow(step, self.backend)
            if problem:
                first = self.unable is None
                self.unable = self.unable or problem
                raise PersonaTooBig(problem) if first else Interrupted()
            self._personas_fit.add(step.name)

    def _cannot_run(self, error: Unsuitable) -> Exception:
        """No file can succeed: the first worker to learn it stops the run and says why
        (Summary.error); the others just leave. Called holding `_capability`."""
        first = self.unable is None
        self.unable = self.unable or str(error)
        return CannotRun(str(error)) if first else Interrupted()


def persona_overflow(step: TextStep, backend: Backend) -> str:
    """Why `step`'s persona cannot fit the model's context with room for the answer ("" if
    it fits, has no persona, or the server does not say its context)."""
    n_ctx = backend.info.n_ctx
    if step.persona is None or not n_ctx:
        return ""
    text = f"{step.system_text()}\n{step.persona.after}"
    tokens = backend.count_tokens(text) or len(text.encode()) // 4  # ~4 bytes a token
    room = n_ctx - step.max_tokens - CONTEXT_MARGIN
    if tokens <= room:
        return ""
    return (
        f"{step.persona.source}: the card is {tokens:,} tokens; the model's context of"
        f" {n_ctx:,} leaves {max(room, 0):,} once the answer's {step.max_tokens:,} are kept free"
    )
