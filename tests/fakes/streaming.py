"""The fakes' streamed answers, as the captures show them: llama.cpp's `/completion` with
`"stream": true` (captures/llama-server/21, and the old server's captures/llama-server-old/20),
koboldcpp's `/api/extra/generate/stream` (captures/koboldcpp/26: HTTP/1.0, the body ends
when the socket closes) and OpenAI's chat stream (captures/llama-server/31, `[DONE]`). Pieces
go out as the fake's pace generates them (pacing.py), and the last event's timings are what
the generation really took.

Hostile streams, chosen by the fake's `failures` like its other failures: "garbage" (lines
that are not events, then data that is not JSON), "no-end" (pieces, then the stream closes
without its last event), "bad-utf8", "endless" (a piece every 20 ms, for ever), "huge"
(80 MB of pieces), "long-line" (one 20 MB line), "hang" (headers, then nothing), "drop"
(pieces, then the connection is cut)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tests.fakes.pacing import Paced

if TYPE_CHECKING:
    from tests.fakes.llama import FakeKobold, FakeLlama, FakeServer, _Handler
    from tests.fakes.openai import FakeOpenAI

HOSTILE = ("garbage", "no-end", "bad-utf8", "endless", "huge", "long-line", "hang", "drop")
ENDLESS_SECONDS = 120.0  # an "endless" stream gives up after this, or when the client goes

# One piece of text as an event's bytes.
Piece = Callable[[str, int], bytes]


class SSE:
    """An event stream on a fake's handler: chunked on HTTP/1.1, until close on HTTP/1.0."""

    def __init__(self, h: _Handler, headers: list[tuple[str, str]], chunked: bool) -> None:
        self.h = h
        self.chunked = chunked
        h.send_response_only(200)
        for name, value in headers:
            h.send_header(name, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        h.close_connection = not chunked
        h.end_headers()
        h.wfile.flush()

    def write(self, data: bytes) -> None:
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.h.wfile.write(data)
        self.h.wfile.flush()

    def event(self, body: Any, name: str = "") -> None:
        head = f"event: {name}\n" if name else ""
        self.write(f"{head}data: {json.dumps(body)}\n\n".encode())

    def end(self) -> None:
        if self.chunked:
            self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()


def serve(
    sse: SSE, pieces: Iterator[str], piece: Piece, last: Callable[[], None], failure: str | None
) -> None:
    """The pieces as events, then the last event; or the hostile stream `failure` names.
    A client that leaves ends it (the generation is then cut short, as a real server's)."""
    with contextlib.suppress(OSError):
        if failure in HOSTILE:
            hostile(sse, piece, str(failure))
            return
        for n, text in enumerate(pieces, 1):
            sse.write(piece(text, n))
        last()
        sse.end()


def hostile(sse: SSE, piece: Piece, failure: str) -> None:
    if failure == "garbage":
        sse.write(b"<html>not an event stream</html>\n\ndata: {not json\n\n")
    elif failure == "no-end":
        sse.write(piece(" half", 1) + piece(" an answer", 2))
    elif failure == "bad-utf8":
        sse.write(b'data: {"content": "\xff\xfe", "token": "\xc3("}\n\n')
    elif failure == "endless":
        until = time.monotonic() + ENDLESS_SECONDS
        n = 0
        while time.monotonic() < until:
            n += 1
            sse.write(piece(" more", n))
            time.sleep(0.02)
    elif failure == "huge":
        block = piece("x" * 60000, 1) * 16  # ~1 MB a write, 80 of them
        for _ in range(80):
            sse.write(block)
    elif failure == "long-line":
        sse.write(b'data: {"content": "' + b"x" * (20 << 20))
    elif failure == "hang":
        time.sleep(3600)
    elif failure == "drop":
        sse.write(piece(" cut", 1))
        sse.h.close_connection = True
        sse.h.connection.shutdown(socket.SHUT_RDWR)
        return
    sse.end()


# -- llama.cpp's /completion ------------------------------------------------------------------
def llama(fake: FakeLlama, h: _Handler, body: dict[str, Any], prompt: str, n_prompt: int) -> None:
    """`/completion` streamed, new or old server generation (`fake.llamafile`)."""
    from tests.fakes.llama import LLAMA_HEADERS

    headers = [(k, v) for k, v in LLAMA_HEADERS if k != "Content-Type"]
    headers += [("X-Accel-Buffering", "no"), ("Content-Type", "text/event-stream")]
    failure = fake.next_failure()
    if failure not in HOSTILE and failure and fake._fail(h, failure):
        return
    old = bool(fake.llamafile)
    done: list[Paced] = []

    def piece(text: str, n: int) -> bytes:
        event: dict[str, Any] = (
            {"content": text, "multimodal": False, "slot_id": 0, "stop": False}
            if old
            else {"index": 0, "content": text, "tokens": [n], "stop": False, "id_slot": -1}
        )
        if not old:
            event.update(tokens_predicted=n, tokens_evaluated=n_prompt)
        return f"data: {json.dumps(event)}\n\n".encode()

    def last() -> None:
        final = _llama_last(fake, prompt, done[0], old) if done else {"stop": True}
        sse.write(f"data: {json.dumps(final)}\n\n".encode())

    if failure in HOSTILE:  # without taking a slot: the next request is answered
        serve(SSE(h, headers, chunked=True), iter(()), piece, lambda: None, failure)
        return
    with fake._slots:
        sse = SSE(h, headers, chunked=True)
        stops = [str(s) for s in body.get("stop") or []]
        pieces = fake.pieces(prompt, stops, done) if failure != "empty" else iter(())
        serve(sse, pieces, piece, last, failure)


def _llama_last(fake: FakeLlama, prompt: str, paced: Paced, old: bool) -> dict[str, Any]:
    timings = llama_timings(paced)
    common = {
        "content": "",
        "stop": True,
        "model": f"models/{fake.model}",
        "tokens_predicted": paced.tokens,
        "tokens_evaluated": paced.prompt_tokens,
        "tokens_cached": paced.prompt_tokens + paced.tokens,
        "truncated": False,
        "stopping_word": "",
        "timings": timings,
        "generation_settings": {"n_ctx": fake.n_ctx, "stream": True},
    }
    if old:
        flags = {"stopped_eos": True, "stopped_limit": False, "stopped_word": False}
        return {**common, **flags, "prompt": prompt, "slot_id": 0}
    timings["cache_n"] = 0
    return {**common, "index": 0, "prompt": "<bos>" + prompt, "id_slot": 0, "stop_type": "eos"}


def llama_timings(paced: Paced) -> dict[str, Any]:
    """llama.cpp's `timings` for what a generation really took."""
    prompt_ms, predicted_ms = paced.prompt_seconds * 1000, paced.seconds * 1000
    return {
        "prompt_n": paced.prompt_tokens,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(1, paced.prompt_tokens),
        "prompt_per_second": 1000 * paced.prompt_tokens / max(prompt_ms, 1e-9),
        "predicted_n": paced.tokens,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(1, paced.tokens),
        "predicted_per_second": 1000 * paced.tokens / max(predicted_ms, 1e-9),
    }


# -- koboldcpp's /api/extra/generate/stream -------------------------------------------------
def kobold(
    fake: FakeKobold,
    h: _Handler,
    prompt: str,
    stops: list[str],
    failure: str | None,
    processed: int | None = None,
) -> None:
    """Called with the fake's generation slot held: each piece as koboldcpp sends what it
    has, then an empty token with the finish reason; the perf figures follow the stream."""
    from tests.fakes.llama import KOBOLD_HEADERS

    headers = [(k, v) for k, v in KOBOLD_HEADERS if k != "content-type"]
    headers += [("connection", "keep-alive"), ("content-type", "text/event-stream")]
    sse = SSE(h, headers, chunked=False)
    done: list[Paced] = []

    def last() -> None:
        if done:
            fake.record_perf(done[0])
        sse.event({"token": "", "finish_reason": "length"}, "message")

    pieces = fake.pieces(prompt, stops, done, processed) if failure != "empty" else iter(())
    serve(sse, pieces, _kobold_piece, last, failure)


def _kobold_piece(text: str, n: int) -> bytes:
    event = {"token": text, "finish_reason": "null"}
    return f"event: message\ndata: {json.dumps(event)}\n\n".encode()


# -- OpenAI's chat stream -----------------------------------------------------------------------
def openai(fake: FakeOpenAI, h: _Handler, body: dict[str, Any], prompt: str, used: int) -> None:
    """Chat chunks, the usage chunk when asked (`stream_options.include_usage`), `[DONE]`;
    as llama-server's /v1 (`owned_by` "llamacpp"), its timings in the last choice chunk."""
    failure = fake.next_failure()
    if failure in ("500", "busy"):
        h.send(503, {"error": {"message": "busy", "type": "server_error"}}, [])
        return
    done: list[Paced] = []
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": body.get("model")}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return f"data: {json.dumps({**head, 'choices': [choice]})}\n\n".encode()

    def last() -> None:
        final = json.loads(chunk({}, "stop")[6:])
        if fake.owned_by == "llamacpp" and done:
            final["timings"] = {**llama_timings(done[0]), "cache_n": 0}
        sse.write(f"data: {json.dumps(final)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            tokens = done[0].tokens if done else 0
            usage = {"prompt_tokens": used, "completion_tokens": tokens}
            sse.write(f"data: {json.dumps({**head, 'choices': [], 'usage': usage})}\n\n".encode())
        sse.write(b"data: [DONE]\n\n")

    headers = [("server", "uvicorn"), ("content-type", "text/event-stream")]
    if failure in HOSTILE:  # without taking a slot: the next request is answered
        piece: Piece = lambda text, n: chunk({"content": text})  # noqa: E731
        serve(SSE(h, headers, chunked=True), iter(()), piece, lambda: None, failure)
        return
    with fake._slots:
        sse = SSE(h, headers, chunked=True)
        sse.write(chunk({"role": "assistant", "content": None}))
        stops = [str(s) for s in body.get("stop") or []]
        pieces = fake.pieces(prompt, stops, done) if failure != "empty" else iter(())
        serve(sse, pieces, lambda text, n: chunk({"content": text}), last, failure)


def kobold_perf(fake: FakeServer, paced: Paced | None) -> dict[str, Any]:
    """`/api/extra/perf` after `paced` (koboldcpp 1.76's fields, captures 16 and 36)."""
    return {
        "last_process": paced.ms_per_prompt_token if paced else 0.0,
        "last_eval": paced.ms_per_token if paced else 0.0,
        "last_token_count": paced.tokens if paced else 0,
        "last_seed": -1,
        "total_gens": len(fake.paced),
        "stop_reason": 1 if paced else -1,
        "total_img_gens": 0,
        "queue": getattr(fake, "waiting", 0),
        "idle": int(fake.active == 0),
        "hordeexitcounter": -1,
        "quiet": False,
    }
