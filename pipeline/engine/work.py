"""The work on one item, done in a worker thread: read it, look up each step's answer in the
cache, and ask the model for the rest (fitting the text into the context, one server slot
at a time, retrying what is worth retrying). Nothing here writes to the store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import time
from typing import Any

from pipeline.answers import Answer, Picture
from pipeline.backends import Rejected, Transient
from pipeline.engine.asking import CannotRun
from pipeline.engine.call import RunContext, StepCall
from pipeline.engine.inflight import InFlight
from pipeline.engine.items import Done, Item, Loaded
from pipeline.engine.retry import BackendDown, Interrupted
from pipeline.errors import BackendUnavailable
from pipeline.hints import Hints, key_inputs, recipe_names
from pipeline.media import ImageError, image_extension, named_as, read_metadata
from pipeline.results import Result
from pipeline.steps import IMAGE_SERVER, Step, kind_of
from pipeline.store.database import now_iso
from pipeline.texts import NotText, decode, hash_file, load_text


class ItemWork:
    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.recipe = context.recipe
        self.info = context.asker.info  # the text model's server (the image server for draw-only)
        self.store = context.store
        self.options = context.options
        self.asker = context.asker
        self.stop = context.asker.stop
        self.shared = InFlight()
        self.hints = Hints(recipe_names(self.recipe))  # read per item only if a template uses it
        # A text file's `{exif.date}` is its mtime (a photo's is read from the photo).
        fields = {f.name for s in self.recipe.steps for t in s.templates() for f in t.fields}
        self.text_exif = any(name.startswith("exif.") for name in fields)

    @property
    def unable(self) -> str | None:
        """Why the backend cannot run this recipe at all (the run stopped for it)."""
        return self.asker.unable

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
            server = kind_of(step).server
            if server == IMAGE_SERVER and self.options.dry_run:
                break  # a dry run shows what would be drawn; the real run reuses the prompts
            fingerprint = self._fingerprint(loaded, step, answers, previous)
            answer = None if self.options.redo else self.store.cached_answer(fingerprint)
            if answer is None:
                answer = self.shared.take(fingerprint, self.stop)  # a twin just answered it
            if answer is None:
                try:
                    with self.shared.owning(fingerprint) as share:
                        call = StepCall(self.context, item, loaded, answers, previous, result, seq)
                        answer = step.answer(call)
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
                        "model": self.context.model(server),
                        "prompt_tokens": result.prompt_tokens,
                        "completion_tokens": result.completion_tokens,
                        "duration_ms": ms_since(started, result.waited),
                    }
                )
                if step is not last:  # a crash before the next step must not cost this one
                    self.context.on_answers(done.cache_rows)
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
        exif = self._text_exif(item) if self.text_exif else None
        fields = {"exif": exif} if exif is not None else {}
        fields.update(self.hints.read(item.path if item.data is None else None, exif))
        return Loaded(hash=text.hash, notes=text.notes, text=text.text, fields=fields)

    def _text_exif(self, item: Item) -> dict[str, object]:
        """`{exif.*}` for a text: blanks, and the file's mtime as its date."""
        from pipeline.media.exif import Metadata

        mtime = None
        if item.data is None:
            with contextlib.suppress(OSError):  # gone since it was read: no date
                mtime = (item.entry.stat or os.stat(item.path)).st_mtime
        return Metadata().fields(mtime, prefer=self.recipe.date)

    def _load_image_item(self, item: Item) -> Loaded:
        """Hash and EXIF only: the image is decoded later, and only if the model is asked."""
        path = item.path
        real = image_extension(path)
        mtime = item.entry.stat.st_mtime if item.entry.stat else None
        exif = read_metadata(path).fields(mtime, prefer=self.recipe.date)
        fields = {"exif": exif, "ext": real, **self.hints.read(path, exif)}
        notes = []
        if not named_as(path, real):
            notes.append(f"content is {real[1:].upper()}, name says {os.path.splitext(path)[1]}")
        return Loaded(hash=hash_file(path), notes=notes, fields=fields)

    def _fingerprint(
        self, loaded: Loaded, step: Step, answers: dict[str, Answer], previous: Answer
    ) -> str:
        """A step's cache key: its own settings, the model that answers it, and the inputs
        it uses. A drawing's key leaves out the text model and the settings of steps it
        does not read, so new drawing settings redraw without asking the text model again.
        The hints a step uses (`{folder}` ...) are inputs too: the same photo in another
        folder is asked again; a step without them keeps the keys it always had."""
        used = {f.name for f in step.prompt.fields}
        inputs = {n: _key_of(a) for n, a in answers.items() if n in used}
        if "answer" in used and answers:
            inputs["answer"] = _key_of(previous)
        inputs.update(key_inputs(step.templates(), loaded.fields))
        model = self.context.model(kind_of(step).server)
        blob = json.dumps(step.cache_key(loaded.hash, model, inputs), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def start_workers(n: int, *args: Any) -> list[threading.Thread]:
    """`n` worker threads (daemons: an interrupt never waits for a slow model), each
    running `_work(*args)`."""
    workers = [
        threading.Thread(target=_work, args=args, daemon=True, name=f"pipe-worker-{i}")
        for i in range(n)
    ]
    for w in workers:
        w.start()
    return workers


def _work(
    tasks: queue.Queue[tuple[int, Item] | None],
    results: queue.Queue[tuple[int, Done | list[dict[str, Any]]]],
    work: ItemWork,
    stop: threading.Event,
) -> None:
    """A worker thread: does the items it is given until it is given None."""
    while True:
        task = tasks.get()
        if task is None:
            return
        seq, item = task
        if stop.is_set():
            continue  # interrupted: leave it for the next run
        try:
            done = work.process(item, seq)
        except Interrupted:
            continue
        except BackendDown as e:
            done = Done(item, Result(item.path, "failed"), fatal=str(e))
        except (CannotRun, BackendUnavailable) as e:
            # CannotRun: the backend cannot do this recipe (or the recipe's card cannot fit
            # it); BackendUnavailable: a backend opened on first need did not start.
            reason = e.stop_reason if isinstance(e, CannotRun) else "unable"
            done = Done(item, Result(item.path, "failed"), fatal=str(e), stop_reason=reason)
        except Exception as e:  # a bug must cost one item, not the run
            done = Done(item, Result(item.path, "failed", error=f"internal error: {e!r}"))
        results.put((seq, done))


def _key_of(answer: Answer) -> str:
    return answer.sha256 if isinstance(answer, Picture) else answer


def ms_since(started: float, waited: float) -> int:
    return int((time.monotonic() - started - waited) * 1000)
