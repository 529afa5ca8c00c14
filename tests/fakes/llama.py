"""Fake llama.cpp and koboldcpp servers: real HTTP servers on 127.0.0.1 that answer with the
field names, status codes, headers and quirks of ../shared/docs/captures/, with knobs for
latency, slots, start-up, failures and garbage. Used by the tests and the benchmarks.

Run one by hand:  python -m tests.fakes.llama llama --port 8080 --latency 0.2 --slots 4
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import streaming
from tests.fakes.pacing import Pace, Paced

Answer = Callable[[str], str]


def default_answer(prompt: str) -> str:
    """Deterministic, different for every prompt, recognisable in tests."""
    return f"Summary {hashlib.sha1(prompt.encode()).hexdigest()[:10]}."


WORDS = (
    "red",
    "quiet",
    "harbour",
    "boat",
    "green",
    "hill",
    "old",
    "street",
    "dog",
    "sunset",
    "market",
    "bridge",
    "winter",
    "garden",
    "river",
    "tower",
)
IMAGE_TOKENS = 64  # what one image costs in the prompt (the tiny projector's 64 embeddings)
MEDIA_MARKER = "<__media_DoXQXIz2HE15pCZtqhFRkuSkfNHM04mj__>"


def vision_answer(prompt: str) -> str:
    """Three words chosen by the image (its digest is in `prompt` for image requests)."""
    digest = hashlib.sha1(prompt.encode()).hexdigest()
    return " ".join(WORDS[int(c, 16)] for c in digest[:3])


def image_digest(images: list[str]) -> str | None:
    """The images' digest, or None when one is not a decodable image (bad base64, not JPEG)."""
    digest = hashlib.sha1()
    for data in images:
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            return None
        if not raw.startswith((b"\xff\xd8", b"\x89PNG")):
            return None
        digest.update(raw)
    return digest.hexdigest()


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per 3 bytes (real tokenizers vary; this is stable)."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 3)  # hostile answers too


def token_ids(text: str) -> list[int]:
    """The fake tokenizer's ids: each 3 bytes as a number (equal texts, equal ids)."""
    data = text.encode("utf-8", "surrogatepass")
    return [int.from_bytes(data[n : n + 3], "big") for n in range(0, len(data), 3)]


class FakeServer:
    """Common machinery. `failures` is a list of modes consumed by successive generate calls:
    "500", "garbage", "empty", "drop", "busy" (503), "hang" (sleeps past any timeout); for
    llama.cpp also "huge" (an 80 MB answer) and "gzip-bomb" (a 100 MB answer, gzipped); for
    streamed requests, streaming.HOSTILE's. `prompt_token_seconds` and `token_seconds` set
    a known latency (pacing.py), which streamed answers show piece by piece."""

    kind = "fake"
    protocol = "HTTP/1.1"

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        slots: int = 1,
        n_ctx: int = 4096,
        model: str = "SmolLM2-135M-Instruct.Q4_1",
        answer: Answer = default_answer,
        failures: list[str] | None = None,
        loading: float = 0.0,
        prompt_token_seconds: float = 0.0,
        token_seconds: float = 0.0,
    ) -> None:
        self.latency = latency
        # Known latency (pacing.py): per prompt token, per generated token, pieces streamed.
        self.pace = Pace(prompt_token_seconds, token_seconds)
        self.paced: list[Paced] = []  # each generation as it happened, in the order they ended
        self.slots = slots
        self.n_ctx = n_ctx
        self.model = model
        self.answer = answer
        self.failures = list(failures or [])
        self.loading_until = time.monotonic() + loading
        self.requests: list[tuple[str, Any]] = []
        self.generate_calls = 0
        self.prompts: Counter[str] = Counter()
        self.active = 0
        self.max_active = 0
        self.spans: list[tuple[float, float]] = []  # (start, end) of each generation
        self.aborted: list[str] = []
        self.dead = False  # kill(): every request, and every answer still to come, dropped
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(slots)
        self._requested_port = port
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self, delay_listen: float = 0.0) -> FakeServer:
        port = self._requested_port
        if delay_listen:
            port = port or free_port()
            self._requested_port = port
            threading.Timer(delay_listen, self._listen).start()
            return self
        self._listen()
        return self

    def _listen(self) -> None:
        server = self

        class Handler(_Handler):
            fake = server
            protocol_version = server.protocol

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._requested_port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def kill(self) -> None:
        """Die like a crashed server: stop listening and drop every connection still open,
        requests in flight included (stop() alone lets kept-alive connections answer)."""
        self.dead = True
        self.stop()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # -- helpers for the protocol classes ------------------------------------------------
    def next_failure(self) -> str | None:
        with self._lock:
            self.generate_calls += 1
            return self.failures.pop(0) if self.failures else None

    def generate(self, prompt: str, stops: list[str]) -> str:
        return "".join(self.pieces(prompt, stops, []))

    def generate_paced(
        self, prompt: str, stops: list[str], processed: int | None = None
    ) -> tuple[str, Paced]:
        done: list[Paced] = []
        text = "".join(self.pieces(prompt, stops, done, processed))
        return text, done[0]

    def pieces(
        self, prompt: str, stops: list[str], done: list[Paced], processed: int | None = None
    ) -> Iterator[str]:
        """The answer to `prompt`, cut at the first stop, a token at a time as paced (the
        prompt's tokens, or the `processed` part of them); what it took goes to `done` (and
        `paced`) once the last piece is taken."""
        with self._lock:
            self.prompts[prompt] += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        started = time.monotonic()
        try:
            if self.latency:
                time.sleep(self.latency)
            text = self.answer(prompt)
            for stop in stops:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            n_prompt = count_tokens(prompt) if processed is None else processed
            yield from self.pace.run(n_prompt, text, done)
            with self._lock:
                self.paced.append(done[-1])
        finally:
            with self._lock:
                self.active -= 1
                self.spans.append((started, time.monotonic()))

    def route(self, handler: _Handler, method: str, path: str, body: Any) -> None:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    # Buffer each answer and send it in one piece (as real servers do): headers and body in
    # separate small writes would meet the client's delayed ACK and add 40 ms per request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = _BadJSON(raw)
        path = self.path.split("?")[0]
        if self.fake.dead:
            self.drop()
            return
        with self.fake._lock:
            self.fake.requests.append((path, body))
        self.fake.route(self, method, path, body)

    def send(
        self, status: int, payload: Any, headers: list[tuple[str, str]], close: bool = False
    ) -> None:
        if self.fake.dead:  # killed while this request was being answered
            self.drop()
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header(
            "Content-Length" if self.fake.protocol == "HTTP/1.1" else "content-length",
            str(len(data)),
        )
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def drop(self) -> None:
        """Close the socket without answering (a crash or a proxy dropping the request)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _BadJSON:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw


LLAMA_HEADERS = [
    ("Server", "llama.cpp"),
    ("Access-Control-Allow-Origin", ""),
    ("Content-Type", "application/json; charset=utf-8"),
]


class FakeLlama(FakeServer):
    """llama.cpp's server (captures/llama-server): queues beyond its slots, 503 while loading.

    `llamafile="0.8.1"` or `"0.8.2"` makes it the old-generation server llamafile runs
    (captures/llama-server-old): `image_data` with `[img-N]` markers, stopped_* booleans,
    slot_id, and the counters each version really reports. Before 0.8.2 an image request
    counts no prompt tokens at all (tokens_evaluated = prompt_n = 0, prompt echoed as "");
    from 0.8.2 (llamafile PR #392) it counts text and image. Only `tokens_cached` (n_past)
    grows by the image in both. With vision=False it is that server started without
    --mmproj: `image_data` is ignored unread and `[img-N]` stays in the prompt as text.
    """

    kind = "llama.cpp"

    def __init__(self, *, llamafile: str = "", vision: bool = False, **kwargs: Any) -> None:
        if llamafile not in ("", "0.8.1", "0.8.2"):
            raise ValueError(f"llamafile must be '0.8.1' or '0.8.2', not {llamafile!r}")
        kwargs.setdefault("model", "gemma-3-270m-q4_k_m.gguf")
        if vision:
            kwargs.setdefault("answer", vision_answer)
        super().__init__(**kwargs)
        self.llamafile = llamafile
        self.vision = vision
        self.images_seen = 0

    def error(self, h: _Handler, status: int, message: str, kind: str, **extra: Any) -> None:
        h.send(
            status,
            {"error": {"code": status, "message": message, "type": kind, **extra}},
            LLAMA_HEADERS,
            close=True,
        )

    def route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        if time.monotonic() < self.loading_until:
            h.send(
                503,
                {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}},
                LLAMA_HEADERS,
                close=True,
            )
            return
        if isinstance(body, _BadJSON):
            self.error(h, 500, "[json.exception.parse_error.101] parse error", "server_error")
            return
        if method == "GET" and path == "/health":
            h.send(200, {"status": "ok"}, LLAMA_HEADERS)
        elif method == "GET" and path == "/props":
            h.send(200, self.props(), LLAMA_HEADERS)
        elif method == "GET" and path == "/slots":
            h.send(
                200,
                [
                    {"id": i, "n_ctx": self.n_ctx, "speculative": False, "is_processing": False}
                    for i in range(self.slots)
                ],
                LLAMA_HEADERS,
            )
        elif method == "POST" and path == "/tokenize":
            content = (body or {}).get("content", "")
            h.send(200, {"tokens": list(range(count_tokens(content)))}, LLAMA_HEADERS)
        elif method == "POST" and path == "/completion":
            self.completion(h, body or {})
        else:
            self.error(h, 404, "File Not Found", "not_found_error")

    def props(self) -> dict[str, Any]:
        if self.llamafile:  # captures/llama-server-old/03-props-mm: no model path, no template
            return {
                "assistant_name": "",
                "default_generation_settings": {
                    "model": f"models/{self.model}",
                    "n_ctx": self.n_ctx,
                    "n_predict": -1,
                    "temperature": 0.800000011920929,
                },
                "total_slots": self.slots,
                "user_name": "",
            }
        return {
            "default_generation_settings": {
                "params": {"temperature": 0.8, "n_predict": -1},
                "n_ctx": self.n_ctx,
            },
            "total_slots": self.slots,
            "model_alias": f"models/{self.model}",
            "model_path": f"models/{self.model}",
            "modalities": {"vision": self.vision, "video": self.vision, "audio": False},
            "media_marker": MEDIA_MARKER,
            "chat_template": "{%- for message in messages -%}<|im_start|>...",
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "build_info": "b1-0c1e570",
        }

    def completion(self, h: _Handler, body: dict[str, Any]) -> None:
        if "prompt" not in body:
            self.error(h, 400, "key 'prompt' not found", "invalid_request_error")
            return
        if self.llamafile:
            self.old_completion(h, body)
            return
        if "grammar" in body and "::=" not in str(body["grammar"]):
            self.error(
                h,
                400,
                "Failed to initialize samplers: failed to parse grammar",
                "invalid_request_error",
            )
            return
        prompt, images = self.read_prompt(h, body)
        if prompt is None:
            return
        n_predict = int(body.get("n_predict", -1))
        n_prompt = count_tokens(prompt) + IMAGE_TOKENS * len(images)
        if n_prompt + max(n_predict, 0) > self.n_ctx:
            self.error(
                h,
                400,
                f"request ({n_prompt} tokens) exceeds the available context size"
                f" ({self.n_ctx} tokens), try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=n_prompt,
                n_ctx=self.n_ctx,
            )
            return
        seen = prompt + (f" [image {image_digest(images)}]" if images else "")
        if body.get("stream"):
            streaming.llama(self, h, body, seen, n_prompt)
            return
        failure = self.next_failure()
        if failure and self._fail(h, failure):
            return
        with self._slots:  # beyond the slots, requests queue: no 503
            text, paced = self.generate_paced(seen, list(body.get("stop") or []))
        if failure == "empty":
            text = ""
        predicted = count_tokens(text)
        result: dict[str, Any] = {
            "index": 0,
            "content": text,
            "tokens": [],
            "stop": True,
            "model": f"models/{self.model}",
            "tokens_predicted": predicted,
            "tokens_evaluated": n_prompt,
            "generation_settings": {"n_predict": n_predict, "temperature": body.get("temperature")},
            "prompt": "<bos>" + prompt,
            "has_new_line": "\n" in text,
            "truncated": False,
            "stopping_word": "",
            "tokens_cached": n_prompt + predicted,
            "timings": {
                **streaming.llama_timings(paced),
                "cache_n": 0,
                "prompt_n": n_prompt,
                "predicted_n": predicted,
            },
            "id_slot": 0,
            "stop_type": "eos",
        }
        h.send(200, result, LLAMA_HEADERS)

    def old_completion(self, h: _Handler, body: dict[str, Any]) -> None:
        """`/completion` of the old-generation server, counting as captured (counters.tsv)."""
        prompt = str(body["prompt"])
        text, images = prompt, []
        if self.vision and body.get("image_data"):
            given = {
                int(entry.get("id", n)): str(entry.get("data", ""))
                for n, entry in enumerate(body["image_data"])
            }
            wanted = [int(n) for n in re.findall(r"\[img-(\d+)\]", prompt)]
            if any(n not in given for n in wanted) or image_digest(list(given.values())) is None:
                # An unknown id, bad base64 or a data: URI (captures 15-17).
                h.send(404, b"File Not Found", [("Content-Type", "text/plain; charset=utf-8")])
                return
            # Images without a marker go before the text (capture 13).
            text, images = re.sub(r"\[img-\d+\]", "", prompt), list(given.values())
            self.images_seen += len(images)
        seen = text + (f" [image {image_digest(images)}]" if images else "")
        if body.get("stream"):
            streaming.llama(self, h, body, seen, count_tokens(text))
            return
        failure = self.next_failure()
        if failure and self._fail(h, failure):
            return
        with self._slots:
            content = self.generate(seen, list(body.get("stop") or []))
        if failure == "empty":
            content = ""
        n_prompt = count_tokens(text) + IMAGE_TOKENS * len(images)
        limit = int(body.get("n_predict", -1))
        predicted = max(1, count_tokens(content))
        predicted = min(predicted, limit) if limit > 0 else predicted
        # Before llamafile 0.8.2 the server clears an image request's prompt before counting.
        counted = not images or self.llamafile == "0.8.2"
        evaluated = n_prompt if counted else 0
        h.send(
            200,
            {
                "content": content,
                "generation_settings": {"model": f"models/{self.model}", "n_ctx": self.n_ctx},
                "model": f"models/{self.model}",
                "prompt": prompt if counted else "",
                "slot_id": 0,
                "stop": True,
                "stopped_eos": True,
                "stopped_limit": False,
                "stopped_word": False,
                "stopping_word": "",
                "timings": {
                    "predicted_ms": 1.0,
                    "predicted_n": predicted,
                    "prompt_ms": 1.0,
                    "prompt_n": evaluated,
                    "prompt_per_second": 1000.0 if counted else 0.0,
                    "prompt_per_token_ms": 1.0 if counted else None,
                },
                "tokens_cached": n_prompt + predicted - 1,  # n_past
                "tokens_evaluated": evaluated,
                "tokens_predicted": predicted,
                "truncated": False,
            },
            LLAMA_HEADERS,
        )

    def read_prompt(self, h: _Handler, body: dict[str, Any]) -> tuple[str | None, list[str]]:
        """The text prompt and the images this server would really use (as captured)."""
        prompt = body["prompt"]
        if isinstance(prompt, dict):  # {"prompt_string", "multimodal_data"}
            images = list(prompt.get("multimodal_data") or [])
            text = str(prompt.get("prompt_string", ""))
            if images and not self.vision:
                self.error(
                    h,
                    400,
                    "Multimodal data provided, but model does not support multimodal requests.",
                    "invalid_request_error",
                )
                return None, []
            if text.count(MEDIA_MARKER) != len(images):
                self.error(h, 400, "Failed to tokenize prompt", "invalid_request_error")
                return None, []
            if images and image_digest(images) is None:
                self.error(h, 400, "Failed to load image or audio file", "invalid_request_error")
                return None, []
            self.images_seen += len(images)
            return text.replace(MEDIA_MARKER, ""), images
        return str(prompt), []  # current servers ignore image_data silently

    def _fail(self, h: _Handler, failure: str) -> bool:
        if failure == "500":
            self.error(h, 500, "internal failure", "server_error")
        elif failure == "busy":
            h.send(
                503,
                {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}},
                LLAMA_HEADERS,
                close=True,
            )
        elif failure == "garbage":
            h.send(200, b"<html>not json", LLAMA_HEADERS)
        elif failure == "huge":  # an answer of 80 MB
            h.send(200, b'{"content": "' + b"x" * (80 << 20) + b'"}', LLAMA_HEADERS)
        elif failure == "gzip-bomb":  # 100 KB that unpacks to a 100 MB answer, unasked
            answer = b'{"content": "' + b"x" * (100 << 20) + b'", "stop": true}'
            headers = [*LLAMA_HEADERS, ("Content-Encoding", "gzip")]
            h.send(200, gzip.compress(answer, compresslevel=1), headers)
        elif failure == "drop":
            h.drop()
        elif failure == "hang":
            time.sleep(3600)
        else:
            return False
        return True


KOBOLD_HEADERS = [
    ("Server", "ConcedoLlamaForKoboldServer "),
    ("access-control-allow-origin", "*"),
    ("cache-control", "no-store"),
    ("content-type", "application/json"),
]


KOBOLD_BUSY = {
    "detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}
}


class FakeKobold(FakeServer):
    """koboldcpp 1.76 (captures/koboldcpp): HTTP/1.0, one generation at a time, 6 more queue,
    the 8th concurrent request gets 503 busy; prompts over the context are cut from the front."""

    kind = "koboldcpp"
    protocol = "HTTP/1.0"
    QUEUE_LIMIT = 6

    def __init__(self, *, vision: bool = False, **kwargs: Any) -> None:
        if vision:
            kwargs.setdefault("answer", vision_answer)
        super().__init__(**kwargs)
        self.vision = vision
        self.images_seen = 0
        self.waiting = 0
        self.last_paced: Paced | None = None
        self.context_ids: list[int] = []  # the last prompt's tokens (its fast forward)
        self.slots = 1
        self._slots = threading.Semaphore(1)

    def route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        if isinstance(body, _BadJSON):
            h.send(
                500,
                {"detail": {"msg": "Error parsing input.", "type": "bad_input"}},
                KOBOLD_HEADERS,
            )
            return
        if method == "GET" and path == "/api/extra/version":
            h.send(
                200,
                {
                    "result": "KoboldCpp",
                    "version": "1.76",
                    "protected": False,
                    "txt2img": False,
                    "vision": self.vision,
                    "transcribe": False,
                },
                KOBOLD_HEADERS,
            )
        elif method == "GET" and path == "/api/v1/model":
            h.send(200, {"result": f"koboldcpp/{self.model}"}, KOBOLD_HEADERS)
        elif method == "GET" and path == "/api/extra/true_max_context_length":
            h.send(200, {"value": self.n_ctx}, KOBOLD_HEADERS)
        elif method == "GET" and path == "/api/extra/perf":
            h.send(200, streaming.kobold_perf(self, self.last_paced), KOBOLD_HEADERS)
        elif method == "POST" and path == "/api/extra/tokencount":
            ids = token_ids(str((body or {}).get("prompt", "")))
            h.send(200, {"value": len(ids), "ids": ids}, KOBOLD_HEADERS)
        elif method == "POST" and path == "/api/extra/abort":
            self.aborted.append((body or {}).get("genkey", ""))
            h.send(200, {"success": "true", "done": "true"}, KOBOLD_HEADERS)
        elif method == "POST" and path == "/api/v1/generate":
            self.generate_endpoint(h, body or {})
        elif method == "POST" and path == "/api/extra/generate/stream":
            self.generate_endpoint(h, body or {}, stream=True)
        else:
            h.send(
                404,
                b"Error: HTTP Server is running, but this endpoint does not exist. "
                b"Please check the URL.",
                [("content-type", "text/html")],
            )

    def record_perf(self, paced: Paced) -> None:
        self.last_paced = paced  # what /api/extra/perf reports

    def fast_forward(self, prompt: str) -> int:
        """The prompt's tokens to process: koboldcpp keeps the prefix it shares with the
        previous prompt (all but the last token at most), as its ContextFastForward does."""
        ids, previous = token_ids(prompt), self.context_ids
        self.context_ids = ids
        kept = 0
        while kept < min(len(previous), len(ids)) and previous[kept] == ids[kept]:
            kept += 1
        return len(ids) - max(0, min(kept, len(ids) - 1))

    def generate_endpoint(self, h: _Handler, body: dict[str, Any], stream: bool = False) -> None:
        with self._lock:
            if self.waiting >= self.QUEUE_LIMIT + 1:
                busy = True
            else:
                busy = False
                self.waiting += 1
        if busy:
            h.send(503, KOBOLD_BUSY, KOBOLD_HEADERS)
            return
        try:
            failure = self.next_failure()
            if failure == "busy":
                h.send(503, KOBOLD_BUSY, KOBOLD_HEADERS)
                return
            if stream and failure in streaming.HOSTILE:
                streaming.kobold(self, h, "", [], failure)
                return
            if failure == "500":
                h.send(
                    500,
                    {"detail": {"msg": "Error parsing input.", "type": "bad_input"}},
                    KOBOLD_HEADERS,
                )
                return
            if failure == "garbage":
                h.send(200, b'{"results": [', KOBOLD_HEADERS)
                return
            if failure == "drop":
                h.drop()
                return
            prompt = str(body.get("prompt", ""))
            # Images need a projector and bare base64; anything else is dropped silently.
            images = [i for i in body.get("images") or [] if self.vision and image_digest([i])]
            self.images_seen += len(images)
            if images:
                prompt += f" [image {image_digest(images)}]"
            # Over the context: silently cut from the front (no flag in the answer).
            room = self.n_ctx - int(body.get("max_length", 100))
            while count_tokens(prompt) > room and prompt:
                prompt = prompt[max(1, len(prompt) - room * 3) :]
            stops = list(body.get("stop_sequence") or [])
            stops = stops if body.get("trim_stop") else []
            with self._slots:
                processed = self.fast_forward(prompt)
                if stream:
                    streaming.kobold(self, h, prompt, stops, failure, processed)
                    return
                text, paced = self.generate_paced(prompt, stops, processed)
                self.record_perf(paced)
            if failure == "empty":
                text = ""
            h.send(200, {"results": [{"text": text, "finish_reason": "length"}]}, KOBOLD_HEADERS)
        finally:
            with self._lock:
                self.waiting -= 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_HELD: list[socket.socket] = []


def dead_url() -> str:
    """A loopback URL where nothing listens and nothing can: the port stays bound, never
    listening, for the life of the test process, so connecting is refused and no fake started
    later can be given the same port (a port merely freed once was, and a test met its own
    fake where it expected nothing)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return f"http://127.0.0.1:{s.getsockname()[1]}"


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["llama", "kobold"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--prompt-token-seconds", type=float, default=0.0)
    parser.add_argument("--token-seconds", type=float, default=0.0)
    args = parser.parse_args()
    cls = FakeLlama if args.kind == "llama" else FakeKobold
    server = cls(
        port=args.port,
        latency=args.latency,
        slots=args.slots,
        n_ctx=args.n_ctx,
        prompt_token_seconds=args.prompt_token_seconds,
        token_seconds=args.token_seconds,
    ).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
