"""Find out which server is at a URL and return the backend that speaks its protocol."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from pipeline.backends.automatic1111 import A1111Backend
from pipeline.backends.base import (
    Backend,
    BackendError,
    Busy,
    Completion,
    ContextOverflow,
    DrawRequest,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    Transient,
    Unreachable,
    Unsuitable,
    make_client,
)
from pipeline.backends.koboldcpp import KoboldBackend
from pipeline.backends.llamacpp import LlamaCppBackend
from pipeline.backends.llamafile_cli import PREFIX as CLI_PREFIX
from pipeline.backends.llamafile_cli import LlamafileCli
from pipeline.backends.openai import OpenAIBackend

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)

__all__ = [
    "Backend",
    "BackendError",
    "Busy",
    "Completion",
    "DrawRequest",
    "LlamafileCli",
    "ContextOverflow",
    "NoVision",
    "Rejected",
    "Request",
    "ServerInfo",
    "Transient",
    "Unreachable",
    "Unsuitable",
    "connect",
    "detect",
    "DEFAULT_URLS",
    "DEFAULT_IMAGE_URLS",
    "REGISTRY",
]

# llamafile and llama.cpp, koboldcpp, Ollama, LM Studio: each one's own default port.
DEFAULT_URLS = (
    "http://127.0.0.1:8080",
    "http://127.0.0.1:5001",
    "http://127.0.0.1:11434",
    "http://127.0.0.1:1234",
)
OPENAI_PREFIX = "openai:"  # `openai:URL` skips detection: speak OpenAI's API to it
# Probed in this order (backends.md): koboldcpp also answers /v1/models, and llama.cpp
# answers both /props and /v1/models. A new kind of server is a module plus one line here.
REGISTRY: tuple[type[Backend], ...] = (
    KoboldBackend,
    LlamaCppBackend,
    A1111Backend,
    OpenAIBackend,
)
# Where an image server is looked for when none is given: koboldcpp, then AUTOMATIC1111.
DEFAULT_IMAGE_URLS = ("http://127.0.0.1:5001", "http://127.0.0.1:7860")
KINDS: dict[str, type[Backend]] = {cls.kind: cls for cls in REGISTRY}


def normalize_url(url: str) -> str:
    url = url.strip().removeprefix(OPENAI_PREFIX).rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url.removesuffix("/v1")


def detect(url: str, client: httpx.Client | None = None, timeout: float = 3.0) -> str:
    """Which kind of server answers at `url`: the first in REGISTRY that recognises itself.

    Raises Unreachable when nothing listens, Transient while a server is still loading.
    """
    import httpx

    loading = False
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(make_client(url))
        for cls in REGISTRY:
            try:
                response = client.get(cls.signature, timeout=timeout)
            except httpx.ConnectError:
                raise Unreachable(f"nothing answers at {url}") from None
            except httpx.TransportError as e:
                raise Transient(f"{url} did not answer {cls.signature}: {e}") from None
            if response.status_code == 503:
                loading = True  # llama.cpp while loading its model: 503 on every path
                continue
            if response.status_code != 200:
                continue
            try:
                body = response.json()
            except ValueError:
                continue
            if cls.recognises(body):
                return cls.kind
    if loading:
        raise Transient(f"{url} is still loading its model")
    raise Rejected(f"{url} answers, but not as llama.cpp, llamafile, koboldcpp or an OpenAI API")


def connect(
    url: str,
    *,
    wait: float = 0.0,
    timeout: float = 300.0,
    api_key: str | None = None,
    model_name: str | None = None,
) -> Backend:
    """Detect and probe the server at `url` (`openai:URL`: an OpenAI-compatible server, no
    detection), waiting up to `wait` seconds while it starts. `api_key` goes only into the
    Authorization header; `model_name` picks the model where a server has several.

    `cli:PATH` is no server: a llamafile run once per request (llamafile_cli.py)."""
    if url.strip().startswith(CLI_PREFIX):
        program = LlamafileCli(url.strip().removeprefix(CLI_PREFIX), timeout=timeout)
        program.probe()
        return program
    forced = KINDS["openai"] if url.strip().startswith(OPENAI_PREFIX) else None
    url = normalize_url(url)
    deadline = time.monotonic() + wait
    delay = 0.25
    client = make_client(url, timeout, api_key)
    while True:
        try:
            backend = (forced or KINDS[detect(url, client)])(url, client=client)
            backend.model_name = model_name
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
