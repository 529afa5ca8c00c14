"""Every kind of backend pipe knows, and what is derived from them: which server is at a
URL, where to look when none is given, what a prefix means, how messages and the CLI's help
list them. A new kind is a module with one class (its class attributes say all of the
above, see base.Backend) and one line in REGISTRY; nothing else lists kinds.

Everything here reads REGISTRY when called, never at import: a test may add a kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.backends.automatic1111 import A1111Backend
from pipeline.backends.base import Backend, Rejected, Transient, Unreachable
from pipeline.backends.http import HttpBackend, make_client, open_http
from pipeline.backends.koboldcpp import KoboldBackend
from pipeline.backends.llamacpp import LlamaCppBackend
from pipeline.backends.llamafile_cli import LlamafileCli
from pipeline.backends.openai import OpenAIBackend

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)

# Detected in this order (backends.md), `fallback` kinds last whatever their place:
# koboldcpp also answers /v1/models, and llama.cpp answers both /props and /v1/models.
REGISTRY: tuple[type[Backend], ...] = (
    KoboldBackend,
    LlamaCppBackend,
    A1111Backend,
    OpenAIBackend,
    LlamafileCli,
)


class Unrecognised(Rejected):
    """A server answers at the URL, but as none of the registered kinds."""


def detected() -> list[type[Backend]]:
    """The kinds `detect()` asks, in order: those with a signature, fallbacks last."""
    return sorted((k for k in REGISTRY if k.signature), key=lambda k: k.fallback)


def by_kind(kind: str) -> type[Backend]:
    return next(k for k in REGISTRY if k.kind == kind)


def by_prefix(url: str) -> type[Backend] | None:
    """The kind a `PREFIX:...` URL names, or None (a plain URL: detected)."""
    url = url.strip()
    return next((k for k in REGISTRY if k.prefix and url.startswith(k.prefix)), None)


def normalize_url(url: str) -> str:
    """One name per server (`openai:host:8080/v1` is `http://host:8080`); a `cli:` file
    stays as given."""
    return (by_prefix(url) or HttpBackend).normalize(url)


def default_urls(serving: str = "text") -> tuple[str, ...]:
    """Where pipe looks for a server that serves `serving` ("text" or "pictures") when none
    is given: every such kind's default ports, by rank."""
    ports = sorted(
        (port for k in REGISTRY if serving in k.serves for port in k.ports),
        key=lambda port: port.rank,
    )
    return tuple(dict.fromkeys(f"http://127.0.0.1:{port.number}" for port in ports))


def start_hints() -> dict[int, str]:
    """What to start when nothing answers on a kind's default port, by port."""
    return {port.number: port.start_hint for k in REGISTRY for port in k.ports}


def preferred() -> list[type[Backend]]:
    """The kinds in the order pipe prefers them (their default ports' rank; kinds with no
    port last): how messages and the CLI's help list them."""
    return sorted(REGISTRY, key=lambda k: min((p.rank for p in k.ports), default=1 << 30))


def recognised() -> str:
    """The model servers detection knows, for messages: "llama.cpp, ... or an OpenAI API"."""
    named = [k.title for k in preferred() if k.signature and "text" in k.serves]
    return ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else "".join(named)


def url_forms() -> str:
    """The forms --backend takes, for the CLI's help: detected servers, then prefixes."""
    plain = [k.title for k in preferred() if k.signature and "text" in k.serves and not k.prefix]
    forms = [f"http://HOST:PORT ({', '.join(plain)}; detected)"]
    forms += [k.prefix_help for k in preferred() if k.prefix and k.prefix_help]
    return ", ".join(forms[:-1]) + f", or {forms[-1]}" if len(forms) > 1 else forms[0]


def detect(url: str, client: httpx.Client | None = None, timeout: float = 3.0) -> str:
    """Which kind of server answers at `url`: the first detected kind that recognises itself.

    Raises Unreachable when nothing listens, Transient while a server is still loading,
    Unrecognised when it answers as no kind."""
    import httpx

    loading = False
    owned = client is None
    client = client or make_client(url)
    try:
        for cls in detected():
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
    finally:
        if owned:
            client.close()
    if loading:
        raise Transient(f"{url} is still loading its model")
    raise Unrecognised(f"{url} answers, but not as {recognised()}")


def connect(
    url: str,
    *,
    wait: float = 0.0,
    timeout: float = 300.0,
    api_key: str | None = None,
    model_name: str | None = None,
) -> Backend:
    """Detect and probe the server at `url`, waiting up to `wait` seconds while it starts;
    `PREFIX:TARGET` (`openai:URL`, `cli:FILE`) opens that kind without detection. `api_key`
    goes only into the Authorization header; `model_name` picks the model where a server
    has several. The backend returned is probed: its `info` is set."""
    named = by_prefix(url)
    if named is not None:
        target = url.strip().removeprefix(named.prefix)
        return named.open(
            target, wait=wait, timeout=timeout, api_key=api_key, model_name=model_name
        )
    url = normalize_url(url)

    def choose(client: httpx.Client) -> type[HttpBackend]:
        kind = by_kind(detect(url, client))
        assert issubclass(kind, HttpBackend), f"{kind.__name__} has a signature, not HTTP"
        return kind

    return open_http(url, choose, wait, timeout, api_key, model_name)
