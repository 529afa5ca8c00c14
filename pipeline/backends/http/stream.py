"""A streamed answer read as events, each with the time it arrived: what `pipe bench` needs
to see the first token. Read within the same bounds as any reply (http/bounded.py: 64 MB,
no encodings) and within the backend's timeout as a whole, not per read, so a server that
trickles forever fails like one that says nothing: one BackendError line, never a hang."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pipeline.backends.base import ServerTimings, Transient, Unreachable
from pipeline.backends.http.backend import _reason
from pipeline.backends.http.sse import BadStream, Event, SSEDecoder

if TYPE_CHECKING:
    import httpx

    from pipeline.backends.http.backend import HttpBackend

# Checks an error answer (status >= 400, body read) and raises the right BackendError.
Check = Callable[["httpx.Response"], None]


def events(
    backend: HttpBackend, path: str, payload: dict[str, Any], check: Check | None = None
) -> Iterator[tuple[float, Event]]:
    """POST `payload` to `path` and yield each event with the seconds since sending it.
    Stop iterating at the last event: the connection is then closed, not drained."""
    import httpx

    where = f"{backend.url}{path}"
    limit = backend.client.timeout.read or 300.0
    started = time.perf_counter()
    try:
        with backend.client.stream("POST", path, json=payload) as response:
            if response.status_code >= 300:
                response.read()
                (check or backend.raise_for_status)(response)
                raise Transient(f"HTTP {response.status_code} from {where}")
            decoder = SSEDecoder()
            for chunk in response.iter_raw():
                now = time.perf_counter() - started
                for event in decoder.feed(chunk):
                    yield now, event
                if now > limit:
                    raise Transient(f"{where} did not finish its answer in {limit:g} s")
            now = time.perf_counter() - started
            for event in decoder.close():
                yield now, event
    except httpx.ConnectError as e:
        raise Unreachable(f"cannot connect to {backend.url}: {_reason(e)}") from None
    except httpx.TimeoutException:
        raise Transient(f"no answer from {where} in time") from None
    except (httpx.TransportError, httpx.StreamError) as e:
        raise Transient(f"connection to {backend.url} dropped: {_reason(e)}") from None
    except BadStream as e:
        raise Transient(f"{where} sent a stream pipe cannot read: {e}") from None


def data(event: Event, where: str) -> Any:
    """An event's JSON; anything else (or an `error:` event) is one Transient line."""
    try:
        body = json.loads(event.data)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        text = event.data[:80]
        raise Transient(f"{where} streamed something that is not JSON: {text!r}") from None
    if event.name == "error" or (isinstance(body, dict) and "error" in body):
        error = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(error, dict):
            error = error.get("message") or error.get("content") or error
        said = " ".join(str(error).split())[:200]  # the server's words, on one line
        raise Transient(f"{where} failed while answering: {said}")
    return body


def ended(where: str) -> Transient:
    """The error for a stream that closed before its last event."""
    return Transient(f"{where} ended its stream before the answer was complete")


def llama_timings(timings: dict[str, Any]) -> ServerTimings:
    """llama.cpp's `timings` (milliseconds; prompt_n leaves out what the cache held), as
    its `/completion` and its `/v1` both give them, and the embedded server too."""

    def number(key: str, scale: float = 1.0) -> Any:
        value = timings.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):  # JSON from Python servers may say NaN or Infinity
            return None
        return value * scale if scale != 1.0 else int(value)

    return ServerTimings(
        prompt_tokens=number("prompt_n"),
        prompt_seconds=number("prompt_ms", 0.001),
        generated_tokens=number("predicted_n"),
        generation_seconds=number("predicted_ms", 0.001),
    )
