"""`pipe doctor [RECIPE]`: what answers at each configured, given or default backend, what it
can do, how fast one tiny request is, what to do about each problem, and whether any of them
can run a recipe."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.backends import (
    Backend,
    BackendError,
    NoVision,
    Request,
    ServerInfo,
    Transient,
    Unreachable,
    Unrecognised,
    connect,
    normalize_url,
)
from pipeline.backends.base import VISION_HINT, tiny_jpeg
from pipeline.backends.registry import start_hints
from pipeline.errors import PipeError
from pipeline.recipe import Recipe
from pipeline.servers import embedded, fallback, remembered
from pipeline.servers.connection import NO_IMAGE_MODEL
from pipeline.servers.fallback import EMBEDDED
from pipeline.steps import IMAGE_SERVER, TEXT_SERVER

DEFAULT_ORIGIN = "default port"
EMBEDDED_ORIGIN = "installed"
MAX_AT_ONCE = 16  # servers checked at the same time


def normalize(url: str) -> str:
    return normalize_url(url)


def start_hint(url: str) -> str:
    """What to start when nothing answers at `url`: the advice of the kind whose default
    port it is."""
    try:
        port = urlsplit(normalize(url)).port
    except ValueError:
        port = None
    return start_hints().get(port or 0, "is the server running? check the host and port")


@dataclass
class Check:
    """What one backend is and can do, as found now."""

    url: str
    role: str  # "text": a model server pipe would ask; "image": the server that would draw
    origin: str  # where the URL came from: "flag --backend", "config PATH", "default port"
    reachable: bool = False
    kind: str = ""
    model: str = ""
    slots: int | None = None
    text: bool = False
    vision: bool | None = None  # None: not known (not checked, or the check failed)
    txt2img: bool = False
    img2img: bool = False
    grammar: bool = False
    latency_ms: float | None = None
    error: str = ""
    advice: list[str] = field(default_factory=list)
    can_run: bool | None = None  # with a recipe: could this backend do its part of it

    @property
    def works(self) -> bool:
        """Answers and (for a text model) answered the tiny request."""
        if not self.reachable or self.error:
            return False
        return self.role == "image" or self.text

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "role": self.role,
            "origin": self.origin,
            "reachable": self.reachable,
            "kind": self.kind or None,
            "model": self.model or None,
            "slots": self.slots,
            "text": self.text,
            "vision": self.vision,
            "txt2img": self.txt2img,
            "img2img": self.img2img,
            "grammar": self.grammar,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "error": self.error or None,
            "advice": self.advice,
            "can_run": self.can_run,
        }


@dataclass(frozen=True)
class Probe:
    """How to reach servers: the same settings `pipe run` would use."""

    wait: float = 0.0
    timeout: float = 60.0
    api_key: str | None = None
    model_name: str | None = None


def check(url: str, role: str, origin: str, probe: Probe, vision: bool) -> Check:
    """Connect to `url`, read what it is, and (for a text model) time one tiny request and,
    with `vision`, find out for real whether it sees images."""
    result = Check(url=url, role=role, origin=origin)
    backend = _connect(result, probe)
    if backend is None:
        return result
    try:
        _read_info(result, backend.info)
        if role == "image" or not result.text:
            return result
        if _time_tiny_request(result, backend) and vision:
            _check_vision(result, backend)
        return result
    finally:
        backend.close()


def _connect(result: Check, probe: Probe) -> Backend | None:
    """The probed backend at `result.url`, or None with the error and advice in `result`."""
    url = result.url
    try:
        return connect(
            url,
            wait=probe.wait,
            timeout=probe.timeout,
            api_key=probe.api_key,
            model_name=probe.model_name,
        )
    except Unreachable:
        result.error = f"nothing answers at {normalize(url).removeprefix('http://')}"
        result.advice.append(start_hint(url))
    except Transient as e:
        result.error = str(e)
        result.advice.append("wait until it has loaded its model (or pass --wait SECONDS)")
    except BackendError as e:
        result.reachable = True  # it answered, but cannot serve as it is
        result.error = str(e)
        result.advice.append(_advice_for(e))
    return None


def _read_info(result: Check, info: ServerInfo) -> None:
    result.reachable = True
    result.kind, result.model, result.slots = info.kind, info.model, info.slots
    if result.role == "image" and info.image_model:
        result.model = info.image_model
    result.text = info.can("text")
    result.txt2img, result.img2img = info.can("txt2img"), info.can("img2img")
    result.grammar = info.can("grammar")
    result.vision = info.can("vision") if result.text else None


def _time_tiny_request(result: Check, backend: Backend) -> bool:
    """Time one tiny request; False (with the error in `result`) if it failed."""
    started = time.perf_counter()
    try:
        backend.complete(Request("Say OK.", max_tokens=2))
    except BackendError as e:
        result.error = f"a tiny request failed: {e}"
        result.advice.append(_advice_for(e))
        return False
    result.latency_ms = (time.perf_counter() - started) * 1000
    return True


def _check_vision(result: Check, backend: Backend) -> None:
    """Whether the server really sees images, and the kind's advice if it does not."""
    try:
        backend.check_vision()
        if backend.info.vision_api == "cli":  # its first photo is its check: send a tiny one
            photo = Request("Describe the photo.", max_tokens=1, images=(tiny_jpeg(),))
            backend.complete(photo)
        result.vision = True
    except NoVision:
        result.vision = False
    except BackendError as e:
        result.vision = None
        result.advice.append(f"the vision check failed: {e}")
    if result.vision is False:
        result.advice.append(f"no vision: {backend.vision_hint}")


def _advice_for(error: BackendError) -> str:
    lowered = str(error).lower()
    if "several models" in lowered or "has no model" in lowered:
        return "several models: pass --model-name NAME (or model_name in the config file)"
    if "key" in lowered or "401" in lowered or "403" in lowered:
        return "pass --api-key-env NAME, with the server's key in that environment variable"
    if isinstance(error, Unrecognised):
        return "is this a model server? for an OpenAI-compatible one pass --backend openai:URL"
    return "check the server's log"


@dataclass
class Report:
    checks: list[Check]
    recipe: Recipe | None = None
    ok: bool = False
    verdict: str = ""  # one sentence on the recipe (or on the setup, without one)
    advice: list[str] = field(default_factory=list)


def diagnose(
    backends: list[tuple[str, str]],
    sd_backend: tuple[str, str] | None,
    default_images: list[str],
    recipe: Recipe | None,
    probe: Probe,
    last_default: ServerInfo | None = None,
) -> Report:
    """Check every (url, origin) in `backends`, then the image server a drawing recipe would
    use, and say whether the recipe (or, without one, anything) can run. `last_default`:
    the server pipe run last used on a default port, which it waits for rather than fall
    back to the embedded model."""
    text_needs = recipe.needs(TEXT_SERVER) if recipe else frozenset()
    needs_vision = "vision" in text_needs
    # Without a recipe, find out for real what each server sees; with one, only if it matters.
    want_vision = recipe is None or needs_vision
    defaults_used = all(origin == DEFAULT_ORIGIN for _, origin in backends)
    seen: set[str] = set()
    checks = _check_text_servers(backends, probe, want_vision, seen)
    if defaults_used and not any(c.works and c.text for c in checks):
        # What pipe run would use: the embedded model (not started here), unless it last
        # used a server on a default port (it waits for that one).
        checks.extend(_embedded_check() if last_default is None else [_gone(last_default)])
    draw_kinds = set(recipe.needs(IMAGE_SERVER)) if recipe else set()
    if sd_backend is not None:
        checks.append(check(sd_backend[0], "image", sd_backend[1], probe, False))
    elif recipe is not None and recipe.draws and not any(_draws(c, draw_kinds) for c in checks):
        for url in default_images:
            if normalize(url) not in seen:
                seen.add(normalize(url))
                checks.append(check(url, "image", DEFAULT_ORIGIN, probe, False))
    report = Report(checks, recipe)
    if recipe is None:
        working = [c for c in checks if c.works and c.text]
        report.ok = bool(working)
        report.verdict = (
            f"{len(working)} of {len(checks)} backends answer"
            if working
            else "no model server answers"
        )
        return report
    _judge(report, recipe, text_needs, draw_kinds)
    return report


def _check_text_servers(
    backends: list[tuple[str, str]], probe: Probe, want_vision: bool, seen: set[str]
) -> list[Check]:
    """Check each (url, origin) once, first mention first (adding each to `seen`)."""
    todo: list[tuple[str, str]] = []
    embedded_named = [_embedded_check(origin) for url, origin in backends if url == EMBEDDED]
    for url, origin in backends:
        if url != EMBEDDED and normalize(url) not in seen:
            seen.add(normalize(url))
            todo.append((url, origin))
    # All at once: a pool of many servers (or several down, each waiting its timeout) takes
    # about as long as its slowest server, not their sum.
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_AT_ONCE, len(todo)))) as executor:
        checked = executor.map(lambda u: check(u[0], "text", u[1], probe, want_vision), todo)
        return [c for named in embedded_named for c in named] + list(checked)


def _judge(
    report: Report, recipe: Recipe, text_needs: frozenset[str], draw_kinds: set[str]
) -> None:
    """Which checked server could do its part of `recipe`; the verdict and advice."""
    checks = report.checks
    text_ok = True
    if recipe.asks:
        for c in checks:
            if c.role == "text":
                c.can_run = c.works and all(_can(c, ability) for ability in text_needs)
        text_ok = any(c.can_run for c in checks if c.role == "text")
    image_ok = True
    if recipe.draws:
        candidates = [c for c in checks if c.role == "image"] or [
            c for c in checks if c.role == "text"
        ]
        for c in candidates:
            if c.role == "image":
                c.can_run = _draws(c, draw_kinds)
        image_ok = any(_draws(c, draw_kinds) for c in candidates)
        if not image_ok:
            report.advice.append(
                f"no image server that can {' and '.join(sorted(draw_kinds))}: {NO_IMAGE_MODEL}"
            )
    if recipe.asks and not text_ok:
        working = [c for c in checks if c.works and c.text]
        if "vision" in text_needs and working:
            report.advice.append(
                f"{recipe.name} needs a model that sees images, and none of these does:"
                f" {VISION_HINT}"
            )
    report.ok = text_ok and image_ok
    needs = _needs(recipe, text_needs, draw_kinds)
    report.verdict = (
        f"{recipe.name} can run ({needs})" if report.ok else f"{recipe.name} cannot run ({needs})"
    )


def _can(c: Check, ability: str) -> bool:
    """What the check found the server can do, by ability name (`backends.base.ABILITIES`);
    an ability it does not check for is not there."""
    return getattr(c, ability, None) is True


def _draws(c: Check, kinds: set[str]) -> bool:
    return c.reachable and all(_can(c, k) for k in kinds) and bool(kinds)


def _needs(recipe: Recipe, text_needs: frozenset[str], draw_kinds: set[str]) -> str:
    parts = []
    if recipe.asks:
        model = "a text model that sees images" if "vision" in text_needs else "a text model"
        more = sorted(text_needs - {"text", "vision"})
        parts.append(f"{model} ({', '.join(more)})" if more else model)
    if draw_kinds:
        parts.append(f"an image server ({', '.join(sorted(draw_kinds))})")
    return "needs " + " and ".join(parts)


def _gone(known: ServerInfo) -> Check:
    """The server pipe run last used on a default port, which no longer answers."""
    return Check(
        url=known.url,
        role="text",
        origin="last used",
        kind=known.kind,
        model=known.model,
        error=fallback.gone(known),
    )


def _embedded_check(origin: str = EMBEDDED_ORIGIN) -> list[Check]:
    """The embedded model, as pipe run would use it when nothing answers on the default
    ports (or with --backend embedded): known from its file, not started (pipe run starts
    it only when a file needs it)."""
    name = embedded.model_name() if embedded.available() else None
    if name is None:
        return []
    return [
        Check(
            url=f"embedded:{name}",
            role="text",
            origin=origin,
            reachable=True,
            kind="embedded model",
            model=name,
            slots=1,
            text=True,
            vision=False,
            grammar=True,
            advice=[
                "pipe run starts it when a file needs an answer (small and weak; for real"
                " work start a server and pass --backend URL)"
            ],
        )
    ]


def last_default(db: str, model_name: str | None) -> ServerInfo | None:
    """The server `pipe run` last used on a default port, as the store `db` remembers it
    (None: none, or no store to ask; doctor never makes one)."""
    if not Path(db).is_file():
        return None
    from pipeline.store.database import Store

    try:
        with contextlib.closing(Store(db)) as store:
            return remembered.recall_chosen(store, remembered.chosen("text", [], model_name))
    except PipeError:  # a store pipe run would refuse too: it says so there
        return None
