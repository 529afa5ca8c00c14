"""The HTTP plumbing every server kind shares: one client per server, requests whose
failures become the right BackendError, and opening a server while it starts.

Kinds subclass HttpBackend; protocol modules (chat.py, sdapi.py) take one and use its
public helpers (`send`, `json`, `raise_for_status`), so any kind speaks a protocol by
composition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline import server_text
from pipeline.backends.base import Backend, BackendError, Busy, Rejected, Transient, Unreachable

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)


class HttpBackend(Backend):
    """A server spoken to over HTTP; subclasses implement probe() and complete()."""

    # What the server calls the repetition penalty in an OpenAI-style request (None: it has
    # no such setting, so none is sent).
    penalty_field: str | None = None

    def __init__(
        self,
        url: str,
        timeout: float = 300.0,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        model_name: str | None = None,
    ) -> None:
        # The name it goes by in messages and the store; the client keeps any credentials.
        self.url = server_text.redact(url.rstrip("/"))
        self.client = client or make_client(url.rstrip("/"), timeout, api_key)
        self.model_name = model_name  # the model to ask for, where a server has several

    @classmethod
    def normalize(cls, url: str) -> str:
        """`host:port`, `http://host:port/`, `PREFIX:http://host:port/v1`: one server."""
        url = url.strip().removeprefix(cls.prefix).rstrip("/")
        if "://" not in url:
            url = "http://" + url
        return url.removesuffix("/v1")

    @classmethod
    def open(
        cls,
        target: str,
        *,
        wait: float = 0.0,
        timeout: float = 300.0,
        api_key: str | None = None,
        model_name: str | None = None,
    ) -> Backend:
        """Speak this kind's protocol to `target`, without detecting what it is."""
        url = HttpBackend.normalize(target)
        return open_http(url, lambda client: cls, wait, timeout, api_key, model_name)

    def close(self) -> None:
        self.client.close()

    # -- helpers for kinds and protocol modules --------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        payload: Any = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One request; a connection that fails is Unreachable or Transient, never httpx's."""
        import httpx

        try:
            kwargs: dict[str, Any] = {"json": payload} if payload is not None else {}
            if timeout is not None:
                kwargs["timeout"] = timeout
            return self.client.request(method, path, **kwargs)
        except httpx.ConnectError as e:
            raise Unreachable(f"cannot connect to {self.url}: {_reason(e)}") from None
        except httpx.TimeoutException:
            raise Transient(f"no answer from {self.url}{path} in time") from None
        except httpx.TransportError as e:
            raise Transient(f"connection to {self.url} dropped: {_reason(e)}") from None

    def json(self, response: httpx.Response) -> Any:
        """The answer's JSON; anything else is Transient (a server in trouble)."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Transient(
                f"{self.url} answered HTTP {response.status_code} with something that is not"
                f" JSON: {response.text[:80]!r}"
            ) from None

    def raise_for_status(self, response: httpx.Response) -> None:
        """Map an HTTP error status to the right error class, with the server's message."""
        status = response.status_code
        if status < 400:
            return
        message = _error_message(response)
        if status == 503:
            raise Busy(f"HTTP 503 from {self.url}: {message}")
        if status >= 500:
            raise Transient(f"HTTP {status} from {self.url}: {message}")
        raise Rejected(f"HTTP {status} from {self.url}: {message}")

    def count_with(self, path: str, payload: dict[str, Any], read: Any) -> int | None:
        """Ask a tokenizer endpoint; None (so callers estimate) when it cannot answer."""
        try:
            response = self.send("POST", path, payload, timeout=60)
            if response.status_code != 200:
                return None
            count = read(self.json(response))
        except (BackendError, AttributeError, TypeError):
            return None
        return count if isinstance(count, int) else None


# Which kind speaks for the server behind a client (detection, or the kind the user named).
Choose = Callable[["httpx.Client"], type[HttpBackend]]


def open_http(
    url: str,
    choose: Choose,
    wait: float,
    timeout: float,
    api_key: str | None = None,
    model_name: str | None = None,
) -> HttpBackend:
    """Choose the kind at `url` and probe it, waiting up to `wait` seconds while the server
    starts (Transient: refused, loading). One client serves the choosing and the backend."""
    deadline = time.monotonic() + wait
    delay = 0.25
    client = make_client(url, timeout, api_key)
    while True:
        try:
            backend = choose(client)(url, client=client, model_name=model_name)
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


def make_client(url: str, timeout: float = 300.0, api_key: str | None = None) -> httpx.Client:
    """One connection pool per server. Plain-http URLs skip building a TLS context, which
    costs a tenth of a second at every start. The key and the URL's password are secrets
    from here on: server_text hides them wherever a server echoes them."""
    server_text.remember(api_key)
    server_text.remember_url(url)
    import httpx

    from pipeline.backends.http.bounded import bounded_reply

    # Uncompressed replies only: a body is bounded by the bytes read (MAX_REPLY).
    headers = {"Accept-Encoding": "identity"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(
        base_url=url,
        timeout=httpx.Timeout(timeout, connect=5.0),
        headers=headers,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        verify=url.startswith("https://"),
        event_hooks={"response": [bounded_reply]},
    )


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.split("] ")[-1] if "] " in text else text


def _error_message(response: httpx.Response) -> str:
    """Both llama.cpp's {"error":{"message"}} and koboldcpp's {"detail":{"msg"}} shapes."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        for outer, inner in (("error", "message"), ("detail", "msg")):
            value = body.get(outer)
            if isinstance(value, dict) and inner in value:
                return str(value[inner])
            if isinstance(value, str):
                return value
    return json.dumps(body)[:200]
