"""Which backends `pipe bench` measures, each a row of its own: every URL given (a pool's
members one by one), a `--model` file pipe starts, an image server given; with none given,
every server answering on a default port (text and image), else the embedded model.

Opening goes through `servers.connection.open_backend`, as `pipe run` opens a server, so
URLs, prefixes (`openai:`, `cli:`), `--model` and the embedded model mean the same here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from pipeline.backends import Backend, BackendError, Transient, connect, normalize_url
from pipeline.backends.lazy import LazyBackend
from pipeline.bench.figures import BIOTICS, SD_YOU, TESTS
from pipeline.config import default_backends, default_image_backends
from pipeline.errors import BackendUnavailable
from pipeline.server_text import redact
from pipeline.servers.connection import open_backend
from pipeline.servers.default_ports import nothing_listens
from pipeline.servers.managed import ManagedSpec

Opener = Callable[[], AbstractContextManager[Backend]]
# llama.cpp's and llamafile's flags for the layers offloaded to the GPU.
GPU_LAYER_FLAGS = ("-ngl", "--n-gpu-layers", "--gpu-layers")


@dataclass(frozen=True)
class Target:
    """One backend to bench: how it is named in figures, how it is opened, what it runs."""

    label: str  # Figures.backend: a URL without credentials, "model:FILE", "embedded"
    open: Opener = field(compare=False)
    tests: tuple[str, ...] = TESTS  # an image server given as such runs only SD_YOU
    gpu_layers: int | None = None  # where pipe started the server itself and knows


@dataclass(frozen=True)
class Connection:
    """How to reach servers, as `pipe run` is told (settings.resolve)."""

    wait: float = 0.0
    timeout: float = 600.0
    api_key: str | None = None
    model_name: str | None = None


def choose(
    urls: list[str],
    sd_url: str | None,
    managed: ManagedSpec | None,
    how: Connection,
    say: Callable[[str], None],
) -> Iterator[Target | BackendUnavailable]:
    """The targets in the order they are benched; a default-port server that answers but
    cannot serve comes as its error (one line, the others still run)."""
    seen: set[str] = set()
    if managed is not None:
        yield Target(
            f"model:{managed.model}", _managed(managed, how, say), TESTS, gpu_layers(managed)
        )
    for url in dict.fromkeys(urls):
        seen.add(normalize_url(url))
        yield Target(backend_name(url), _given(url, how, say))
    if sd_url and normalize_url(sd_url) not in seen:
        seen.add(normalize_url(sd_url))
        yield Target(backend_name(sd_url), _given(sd_url, how, say), (SD_YOU,))
    if managed is not None or urls:
        return
    found = False
    for url, tests in _default_ports(seen):
        try:
            backend = connect(
                url, wait=0, timeout=how.timeout, api_key=how.api_key, model_name=how.model_name
            )
        except Transient:  # nothing there, or still loading: not a server to bench now
            continue
        except BackendError as e:
            yield BackendUnavailable(f"{url}: {e}")
            continue
        if tests == (SD_YOU,) and not backend.info.can("txt2img"):
            backend.close()
            continue
        found = True
        yield Target(backend_name(url), _opened(backend), tests)
    if not found and not sd_url:
        yield Target("embedded", _embedded(how, say), (BIOTICS,))


def backend_name(url: str) -> str:
    """How figures name the server at `url`: one name per server, without credentials."""
    return redact(normalize_url(url))


def _default_ports(seen: set[str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every default port where something listens: text ports first, then image ports."""
    for urls, tests in ((default_backends(), TESTS), (default_image_backends(), (SD_YOU,))):
        for url in urls:
            key = normalize_url(url)
            if key in seen or nothing_listens(url):
                continue
            seen.add(key)
            yield url, tests


def _given(url: str, how: Connection, say: Callable[[str], None]) -> Opener:
    return lambda: open_backend(
        [url],
        wait=how.wait,
        timeout=how.timeout,
        say=say,
        api_key=how.api_key,
        model_name=how.model_name,
    )


def _managed(spec: ManagedSpec, how: Connection, say: Callable[[str], None]) -> Opener:
    return lambda: open_backend([], wait=how.wait, timeout=how.timeout, say=say, managed=spec)


@contextmanager
def _embedded_opened(how: Connection, say: Callable[[str], None]) -> Iterator[Backend]:
    """The embedded model, started now (a bench measures it running, not starting)."""
    with open_backend([], wait=how.wait, timeout=how.timeout, say=say) as backend:
        assert backend is not None
        yield backend.open() if isinstance(backend, LazyBackend) else backend


def _embedded(how: Connection, say: Callable[[str], None]) -> Opener:
    return lambda: _embedded_opened(how, say)


def _opened(backend: Backend) -> Opener:
    @contextmanager
    def already() -> Iterator[Backend]:
        try:
            yield backend
        finally:
            backend.close()

    return already


def gpu_layers(spec: ManagedSpec) -> int | None:
    """The GPU layers pipe started `spec` with, if its arguments say (else the server's
    default, which it does not report)."""
    args = list(spec.extra_args)
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in GPU_LAYER_FLAGS:
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            if re.fullmatch(r"\d+", value):
                return int(value)
    return None
