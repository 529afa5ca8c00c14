"""Find out which server is at a URL and return the backend that speaks its protocol."""

from __future__ import annotations

import contextlib
import time

import httpx

from pipeline.backends.base import (
    Backend,
    BackendError,
    Busy,
    Completion,
    ContextOverflow,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    Transient,
    Unreachable,
    make_client,
)
from pipeline.backends.koboldcpp import KoboldBackend
from pipeline.backends.llamacpp import LlamaCppBackend
from pipeline.backends.openai import OpenAIBackend

__all__ = [
    "Backend",
    "BackendError",
    "Busy",
    "Completion",
    "ContextOverflow",
    "NoVision",
    "Rejected",
    "Request",
    "ServerInfo",
    "Transient",
    "Unreachable",
    "connect",
    "detect",
    "DEFAULT_URLS",
]

DEFAULT_URLS = ("http://127.0.0.1:8080", "http://127.0.0.1:5001")
KINDS: dict[str, type[Backend]] = {
    "koboldcpp": KoboldBackend,
    "llama.cpp": LlamaCppBackend,
    "openai": OpenAIBackend,
}


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url.removesuffix("/v1")


def detect(url: str, client: httpx.Client | None = None, timeout: float = 3.0) -> str:
    """Which API answers at `url`, probing in the order backends.md gives.

    Raises Unreachable when nothing listens, Transient while a server is still loading.
    """
    loading = False
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(make_client(url))
        for path, kind in (
            ("/api/extra/version", "koboldcpp"),
            ("/props", "llama.cpp"),
            ("/v1/models", "openai"),
        ):
            try:
                response = client.get(path, timeout=timeout)
            except httpx.ConnectError:
                raise Unreachable(f"nothing answers at {url}") from None
            except httpx.TransportError as e:
                raise Transient(f"{url} did not answer {path}: {e}") from None
            if response.status_code == 503:
                loading = True  # llama.cpp while loading its model: 503 on every path
                continue
            if response.status_code != 200:
                continue
            try:
                body = response.json()
            except ValueError:
                continue
            if kind == "koboldcpp" and not (
                isinstance(body, dict) and body.get("result") == "KoboldCpp"
            ):
                continue
            return kind
    if loading:
        raise Transient(f"{url} is still loading its model")
    raise Rejected(f"{url} answers, but not as llama.cpp, llamafile, koboldcpp or an OpenAI API")


def connect(
    url: str, *, wait: float = 0.0, timeout: float = 300.0, api_key: str | None = None
) -> Backend:
    """Detect and probe the server at `url`, waiting up to `wait` seconds while it starts."""
    url = normalize_url(url)
    deadline = time.monotonic() + wait
    delay = 0.25
    client = make_client(url, timeout, api_key)
    while True:
        try:
            backend = KINDS[detect(url, client)](url, client=client)
            backend.probe()
            return backend
        except Transient:
            if time.monotonic() + delay > deadline:
                client.close()
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        except BaseException:
            client.close()
            raise
