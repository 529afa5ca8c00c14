"""`pipe bench` as a library: each target opened in turn, the biotics requests (one warm-up,
then the repeats) and the portraits timed, and each test's figures handed on as soon as it
is done (the store keeps them). A backend that fails gives one line and the others run.

    bench = Bench(persona, portrait, Plan(repeat=3), say=print, failed=print)
    outcome = bench.run(targets.choose(...), keep=store.bench.add)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from pipeline.backends import Backend, BackendError, DrawRequest, Request, ServerInfo, Timed
from pipeline.bench import biotics, pictures
from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.bench.measure import biotics_figures, median
from pipeline.bench.targets import Target
from pipeline.errors import BackendUnavailable, PipeError
from pipeline.personas.persona import Persona

A = TypeVar("A")
R = TypeVar("R")
WARM_UPS = 1  # biotics requests sent first and not counted: a model's first is slower
# What a portrait is drawn with besides its size and steps: the recipes' defaults.
PORTRAIT_DEFAULTS = DrawRequest(prompt="")
NEGATIVE_PROMPT = "text, letters, words, watermark, signature, logo, blurry, lowres"


@dataclass(frozen=True)
class Plan:
    repeat: int = 3  # biotics requests and pictures per backend, each figure their median
    size: int = PORTRAIT_DEFAULTS.width  # the portrait's side, in pixels
    steps: int = PORTRAIT_DEFAULTS.steps
    keep: Path | None = None  # where the portraits are saved; None: kept in memory only


@dataclass
class Outcome:
    figures: list[Figures] = field(default_factory=list)
    reached: int = 0  # backends that answered
    failed: int = 0  # backends (or their tests) that failed


class Bench:
    def __init__(
        self,
        persona: Persona,
        portrait: str,
        plan: Plan,
        say: Callable[[str], None] = lambda _: None,
        failed: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.persona = persona
        self.portrait = portrait
        self.plan = plan
        self.say = say  # progress, for people
        self.failed = failed  # one line per failure
        self.nonce = secrets.token_hex(4)  # this bench's requests are new to every cache

    def run(
        self,
        targets: Iterable[Target | PipeError],
        keep: Callable[[Figures], None] = lambda _: None,
    ) -> Outcome:
        """Bench each target in turn; `keep` gets each test's figures when it is done."""
        outcome = Outcome()
        for target in targets:
            if isinstance(target, PipeError):
                outcome.failed += 1
                self.failed(str(target))
                continue
            for figures in self._target(target, outcome):
                keep(figures)
                outcome.figures.append(figures)
        return outcome

    def _target(self, target: Target, outcome: Outcome) -> Iterable[Figures]:
        try:
            with target.open() as backend:
                outcome.reached += 1
                info = backend.info
                text = BIOTICS in target.tests and _has_text(info)
                draws = SD_YOU in target.tests and info.can("txt2img")
                if text:
                    yield self.biotics(target, backend)
                if draws:
                    yield self.sd_you(target, backend)
                if target.tests == (SD_YOU,) and not draws:  # given as an image server
                    raise BackendError(f"{info.url} has no image model loaded: no /sd you")
                if not (text or draws):
                    raise BackendError(f"{info.url} has neither a text nor an image model")
        except (BackendError, BackendUnavailable, pictures.NotReplaced) as e:
            outcome.failed += 1
            said = str(e)
            self.failed(said if target.label in said else f"{target.label}: {said}")

    def biotics(self, target: Target, backend: Backend) -> Figures:
        n = self.plan.repeat
        for run in range(WARM_UPS):  # numbered 0, -1, ...: apart from the counted ones
            warm = asked(backend, backend.complete_timed, self._request(-run))
            self.say(f"{target.label}: biotics warm-up: {warm.seconds:.2f} s (not counted)")
        timed: list[Timed] = []
        for run in range(1, n + 1):
            timed.append(asked(backend, backend.complete_timed, self._request(run)))
            self.say(f"{target.label}: biotics {run}/{n}: {timed[-1].seconds:.2f} s")
        measured = biotics_figures(timed)
        notes = measured.pop("settings")
        settings = {
            **biotics.settings(),
            "chat_format": backend.info.chat_format,
            "warm_ups": WARM_UPS,
            **notes,
        }
        return self._figures(BIOTICS, target, backend.info, measured, settings)

    def _request(self, run: int) -> Request:
        return biotics.request(self.persona, run, self.nonce)

    def sd_you(self, target: Target, backend: Backend) -> Figures:
        plan, n = self.plan, self.plan.repeat
        names = pictures.names(self.persona.name, target.label, n)
        if plan.keep is not None:
            pictures.check_free(plan.keep, names)  # before minutes of drawing
        seconds: list[float] = []
        for run in range(1, n + 1):
            request = DrawRequest(
                prompt=self.portrait,
                negative_prompt=NEGATIVE_PROMPT,
                width=plan.size,
                height=plan.size,
                steps=plan.steps,
                seed=run,  # each picture its own, the same on every bench
            )
            started = time.perf_counter()
            picture = asked(backend, backend.draw, request)
            seconds.append(time.perf_counter() - started)
            self.say(f"{target.label}: /sd you {run}/{n}: {seconds[-1]:.2f} s")
            if plan.keep is not None and picture.png is not None:
                pictures.save(plan.keep / names[run - 1], picture.png)
        measured = {"seconds": median(seconds), "runs": n, "width": plan.size}
        measured |= {"height": plan.size, "steps": plan.steps}
        settings = {
            "image_model": backend.info.image_model,
            "cfg_scale": PORTRAIT_DEFAULTS.cfg_scale,
            "sampler": PORTRAIT_DEFAULTS.sampler,
            "negative_prompt": NEGATIVE_PROMPT,
            "portrait": self.portrait,
            "seeds": list(range(1, n + 1)),
            "warm_ups": 0,  # a picture costs minutes; the median of 3 drops a slow first
        }
        return self._figures(SD_YOU, target, backend.info, measured, settings)

    def _figures(
        self,
        test: str,
        target: Target,
        info: ServerInfo,
        measured: dict[str, Any],
        settings: dict[str, Any],
    ) -> Figures:
        return Figures(
            test=test,
            backend=target.label,
            kind=info.kind,
            model=info.model if _has_text(info) else info.image_model or info.model,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            context_size=info.n_ctx,
            gpu_layers=target.gpu_layers,
            settings={
                "repeat": self.plan.repeat,
                "persona": self.persona.name,
                "persona_source": self.persona.source,
                "version": info.version,
                **settings,
            },
            **measured,
        )


def asked(backend: Backend, call: Callable[[A], R], argument: A) -> R:
    """`call(argument)` in a thread of its own, so that Ctrl-C reaches pipe while the
    request is in flight and the server is told to stop (koboldcpp would go on generating
    for nobody); the thread is a daemon, so a server that never answers holds no exit."""
    done: dict[str, Any] = {}

    def work() -> None:
        try:
            done["value"] = call(argument)
        except BaseException as e:  # handed to the caller's thread, as it was
            done["error"] = e

    thread = threading.Thread(target=work, name="pipe-bench", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        backend.abort_running()
        raise
    if "error" in done:
        raise done["error"]
    return cast(R, done["value"])


def _has_text(info: ServerInfo) -> bool:
    """Whether a text model answers: koboldcpp started with only --sdmodel names its text
    model "inactive" and still says it has the text API."""
    return info.can("text") and info.model not in ("", "inactive")
