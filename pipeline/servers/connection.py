"""Choose the backend for a run: the URL the user gave, a server on a default port, or the
embedded model; and close (or stop) it at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.backends import (
    Backend,
    BackendError,
    ServerInfo,
    Transient,
    Unreachable,
    connect,
    normalize_url,
)
from pipeline.backends.lazy import LazyBackend
from pipeline.backends.pool import MixedModels, Pool
from pipeline.backends.pool_members import describe
from pipeline.config import default_image_backends
from pipeline.errors import BackendUnavailable, UsageError
from pipeline.recipe import Recipe
from pipeline.servers import remembered
from pipeline.servers.fallback import EMBEDDED, default_server, named_embedded
from pipeline.servers.known import chosen_server, known_server
from pipeline.servers.managed import ManagedServer, ManagedSpec
from pipeline.servers.reach import HOW_TO_START, connect_or_explain
from pipeline.steps import IMAGE_SERVER

if TYPE_CHECKING:
    from pipeline.store.database import Store


@contextmanager
def open_backend(
    urls: list[str],
    *,
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    needed: bool = True,
    api_key: str | None = None,
    model_name: str | None = None,
    managed: ManagedSpec | None = None,
    jobs: int = 0,
    allow_mixed_models: bool = False,
    vision_for: str = "",
    store: Store | None = None,
) -> Iterator[Backend | None]:
    """The text model's server: the one pipe starts from `managed` (`--model`), the URL
    given, a server on a default port, or the embedded model (None when the recipe asks no
    text model: it only draws). `api_key` is sent as a Bearer token and kept nowhere else.
    Several URLs make a Pool (`jobs` is shared out among the members that do not say their
    slots). The embedded model is started only when an item first needs it (LazyBackend),
    and so is the `--model` server once `store` knows what it says of itself; `vision_for`
    (a recipe that needs a model that sees) never falls back to the embedded model."""
    if not needed:
        yield None
        return
    if managed is not None:
        if urls:
            raise UsageError("give --model FILE or --backend URL, not both")
        with _managed_backend(managed, store, wait, timeout, say) as backend:
            yield backend
        return
    if EMBEDDED in urls:
        with closing(named_embedded(urls, wait, timeout, say, vision_for)) as backend:
            yield backend
        return
    if urls:

        def open_now() -> Backend:
            return _open_given(
                urls, wait, timeout, say, api_key, model_name, jobs, allow_mixed_models
            )

        choice = remembered.chosen("text", urls, model_name)
        known = remembered.recall_chosen(store, choice)
        with chosen_server(store, choice, known, _named(urls), open_now) as backend:
            yield backend
        return
    with default_server(store, wait, timeout, say, vision_for, api_key, model_name) as backend:
        yield backend


@contextmanager
def _managed_backend(
    spec: ManagedSpec,
    store: Store | None,
    wait: float,
    timeout: float,
    say: Callable[[str], None],
) -> Iterator[Backend]:
    """The server pipe starts from `spec`: at once the first time (what it says of itself,
    its model name above all, keys the cache, so the store remembers it), and after that
    only when an item first needs an answer, known meanwhile by what it said last time."""
    known = remembered.recall(store, spec) if store is not None else None
    if known is not None:
        ManagedServer(spec).check()  # a file made unusable since is a usage error now
        known = replace(known, url=str(spec.model.absolute()))

    def start(stack: ExitStack) -> Backend:
        server = ManagedServer(spec, say)
        stack.callback(server.stop)
        server.start()  # when started lazily, a UsageError (changed since) is exit 3
        backend = connect_or_explain(server.url, wait, timeout)
        stack.callback(backend.close)
        return backend

    def keep(info: ServerInfo) -> None:
        if store is not None:
            remembered.remember(store, spec, info)

    with known_server(known, start, keep, what=spec.name) as backend:
        yield backend


def _open_given(
    urls: list[str],
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    api_key: str | None = None,
    model_name: str | None = None,
    jobs: int = 0,
    allow_mixed_models: bool = False,
    drawing: bool = False,
) -> Backend:
    """The server given, or the Pool of the several given."""
    if len(urls) == 1:
        return connect_or_explain(urls[0], wait, timeout, api_key, model_name)
    return _open_pool(
        urls, wait, timeout, say, api_key, model_name, jobs, allow_mixed_models, drawing
    )


def _named(urls: list[str]) -> str:
    """How a run names the servers given before it opens them: as a Pool names itself."""
    return describe([normalize_url(u) for u in dict.fromkeys(urls)])


def _open_pool(
    urls: list[str],
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    api_key: str | None,
    model_name: str | None,
    jobs: int,
    allow_mixed_models: bool,
    drawing: bool = False,
) -> Pool:
    """Connect to every URL at once. One that does not answer yet (refused, loading) joins
    the pool when it does; one that answers but cannot serve (a wrong key, a missing model
    name) is left out; only when none answers is it the usual error."""
    urls = list(dict.fromkeys(urls))

    def attempt(url: str, wait: float) -> Backend | BackendError:
        try:
            return connect(url, wait=wait, timeout=timeout, api_key=api_key, model_name=model_name)
        except BackendError as e:
            return e

    members, failed = _connect_all(urls, wait, attempt)
    late = [(url, error) for url, error in failed if isinstance(error, Transient)]
    for url, error in failed:
        if isinstance(error, Transient):
            say(f"warning: {url} does not answer yet ({error}); it joins the pool when it does")
        else:
            say(f"warning: leaving {url} out of the pool: {error}")
    share = _slot_share(jobs, len(urls))

    def join(url: str) -> tuple[Backend, int]:
        backend = connect(url, wait=0, timeout=timeout, api_key=api_key, model_name=model_name)
        return backend, _slots_of(backend, share)

    try:
        return Pool(
            members,
            [_slots_of(member, share) for member in members],
            late=late,
            join=join,
            say=say,
            allow_mixed_models=allow_mixed_models,
            drawing=drawing,
        )
    except MixedModels as e:
        for member in members:
            member.close()
        raise UsageError(str(e)) from None


def _connect_all(
    urls: list[str], wait: float, attempt: Callable[[str, float], Backend | BackendError]
) -> tuple[list[Backend], list[tuple[str, BackendError]]]:
    """Every URL at once, without waiting; again waiting `wait` only if none answered. The
    backends that answered and the URLs that failed, with why; BackendUnavailable if none."""
    with ThreadPoolExecutor(max_workers=min(32, len(urls))) as executor:
        outcomes = list(executor.map(lambda u: attempt(u, 0.0), urls))
        if not any(isinstance(o, Backend) for o in outcomes) and wait > 0:
            outcomes = list(executor.map(lambda u: attempt(u, wait), urls))
    members = [o for o in outcomes if isinstance(o, Backend)]
    failed = [(u, o) for u, o in zip(urls, outcomes, strict=True) if isinstance(o, BackendError)]
    if not members:
        url, error = failed[0]
        if isinstance(error, Unreachable):
            raise BackendUnavailable(
                f"none of the {len(urls)} --backend servers answers ({error}); {HOW_TO_START}"
            )
        raise BackendUnavailable(f"none of the {len(urls)} --backend servers can serve: {error}")
    return members, failed


def _slot_share(jobs: int, servers: int) -> int:
    """Each server's even share of -j, rounded up (-j 5 over 2 is 3 each); 0 without -j."""
    return -(-jobs // servers) if jobs else 0


def _slots_of(member: Backend, share: int) -> int:
    """A member's slots: what it says (llama.cpp's total_slots, koboldcpp's 1); a server that
    cannot say (`slots_known` false: OpenAI-compatible) gets its share of -j, or its default."""
    guessed = not member.slots_known
    return max(1, share if guessed and share else member.info.slots)


NO_IMAGE_MODEL = (
    "start koboldcpp with an image model (koboldcpp --sdmodel MODEL.safetensors, port 5001)"
    " or AUTOMATIC1111 with --api (port 7860), or pass --sd-backend URL"
)


@contextmanager
def open_image_backend(
    recipe: Recipe | None,
    urls: list[str],
    text: Backend | None,
    *,
    wait: float,
    timeout: float,
    say: Callable[[str], None] = lambda message: None,
    store: Store | None = None,
) -> Iterator[Backend | None]:
    """The server that draws the recipe's pictures (None if it draws none): the URL given
    (several make a Pool of image servers), else the text server if it can draw, else
    koboldcpp's and A1111's default ports. A server that cannot draw is refused here,
    before the first file (exit 3); one `store` knows from last time is opened only when
    an item needs a picture. No recipe: nothing will be drawn (a dry run)."""
    if recipe is None or not recipe.draws:
        yield None
        return
    if not urls and text is not None and text.info.can("txt2img"):
        _check_can_draw(recipe, text)
        yield text
        return

    def open_now() -> Backend:
        if urls:
            return _open_given(urls, wait, timeout, say, drawing=True)
        return _on_default_image_ports(timeout)

    choice = remembered.chosen("draw", urls)
    known = remembered.recall_chosen(store, choice)
    label = _named(urls) if urls else ""
    with chosen_server(store, choice, known, label, open_now, name_field="image_model") as backend:
        _check_can_draw(recipe, backend)
        yield backend


def _on_default_image_ports(timeout: float) -> Backend:
    """The first server on koboldcpp's or A1111's default port that draws."""
    for default in default_image_backends():
        try:
            candidate = connect(default, wait=0, timeout=timeout)
        except BackendError:
            continue
        if candidate.info.can("txt2img"):
            return candidate
        candidate.close()
    where = " or ".join(u.removeprefix("http://") for u in default_image_backends())
    raise BackendUnavailable(f"no image server found at {where}; {NO_IMAGE_MODEL}")


def _check_can_draw(recipe: Recipe, backend: Backend) -> None:
    """Refuse a server without an image model; its samplers are asked when it is opened."""
    info = backend.info
    needs = recipe.needs(IMAGE_SERVER)
    missing = needs - info.abilities
    if missing:
        raise BackendUnavailable(
            f"{info.url} ({info.kind}) has no image model loaded, so it cannot"
            f" {' or '.join(sorted(missing))}; {NO_IMAGE_MODEL}"
        )
    if isinstance(backend, LazyBackend):
        backend.check_when_opened(lambda opened: _check_samplers(recipe, opened))
    else:
        _check_samplers(recipe, backend)


def _check_samplers(recipe: Recipe, backend: Backend) -> None:
    for step in recipe.steps:
        sampler = getattr(step, "sampler", None)
        if sampler and backend.sampler(sampler) is None and backend.sampler("Euler a"):
            # koboldcpp would silently draw with Euler a instead.
            raise UsageError(
                f"{recipe.path}: {step.name}.sampler: {backend.info.url} has no sampler {sampler!r}"
            )
