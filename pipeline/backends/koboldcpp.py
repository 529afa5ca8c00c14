"""koboldcpp's native API: `/api/extra/version`, `/api/v1/generate` (one generation at a time)."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from pipeline.answers import Picture
from pipeline.backends import koboldcpp_perf as perf
from pipeline.backends.base import (
    BackendError,
    Completion,
    DefaultPort,
    DrawRequest,
    NoVision,
    Request,
    ServerInfo,
    Timed,
    Transient,
    b64,
)
from pipeline.backends.chat_formats import guess_format
from pipeline.backends.http import HttpBackend, sdapi, stream
from pipeline.backends.http.sdapi import ImageModelInfo, probe_images

NO_VISION_HINT = "start koboldcpp with its vision projector: --mmproj MMPROJ.gguf"


class KoboldBackend(HttpBackend):
    kind = "koboldcpp"
    title = "koboldcpp"
    signature = "/api/extra/version"
    ports = (
        DefaultPort(5001, "start 'koboldcpp --model model.gguf' or pass --backend URL", rank=20),
    )
    serves = frozenset({"text", "pictures"})  # pictures when started with --sdmodel
    vision_hint = "start koboldcpp with --mmproj MMPROJ.gguf"

    @classmethod
    def recognises(cls, body: object) -> bool:
        return isinstance(body, dict) and body.get("result") == "KoboldCpp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.images: ImageModelInfo | None = None
        self._running: set[str] = set()
        # The prompt this backend last sent: how much of the next one koboldcpp reuses.
        self.last_prompt: str | None = None
        self.previous_prompt: str | None = None  # the one before, while the last runs
        self._lock = threading.Lock()

    def probe(self) -> ServerInfo:
        response = self.send("GET", "/api/extra/version", timeout=10)
        self.raise_for_status(response)
        version = self.json(response)
        model = self._value("/api/v1/model", "result") or ""
        n_ctx = self._value("/api/extra/true_max_context_length", "value")
        model = str(model).removeprefix("koboldcpp/")
        self.images = probe_images(self) if version.get("txt2img") else None
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=model,
            slots=1,  # koboldcpp generates one at a time; more requests only queue (or 503)
            n_ctx=int(n_ctx) if isinstance(n_ctx, int | float) else None,
            chat_format=guess_format(model),
            abilities=frozenset(
                {"text", "tokenize", "grammar"}
                | ({"vision"} if version.get("vision") else set())  # 1.76: --mmproj given
                | ({"txt2img", "img2img"} if self.images else set())  # --sdmodel given
            ),
            image_model=self.images.model if self.images else "",
            version=str(version.get("version", "")),
            vision_api="images" if version.get("vision") else "",
        )
        return self.info

    def _value(self, path: str, key: str) -> object:
        try:
            response = self.send("GET", path, timeout=10)
            if response.status_code == 200:
                return self.json(response).get(key)
        except (BackendError, AttributeError):
            pass
        return None

    def complete(self, request: Request) -> Completion:
        payload = self._payload(request)
        with self._tracked(payload):
            response = self.send("POST", "/api/v1/generate", payload)
        self.raise_for_status(response)
        body = self.json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not results or not isinstance(results[0], dict) or "text" not in results[0]:
            raise Transient(f"{self.url}/api/v1/generate answered without results[0].text")
        # finish_reason is "length" even when a stop sequence ended it: not reported.
        return Completion(text=str(results[0]["text"]))

    def complete_timed(self, request: Request) -> Timed:
        """The same request streamed (`/api/extra/generate/stream`), then the server's own
        account of it from `/api/extra/perf` (see koboldcpp_perf.py)."""
        payload = self._payload(request)
        path = "/api/extra/generate/stream"
        where = f"{self.url}{path}"
        pieces: list[str] = []
        first: float | None = None
        end: float | None = None
        with self._tracked(payload):
            for at, event in stream.events(self, path, payload):
                body = stream.data(event, where)
                token = body.get("token") if isinstance(body, dict) else None
                if not isinstance(token, str):
                    raise Transient(f"{where} streamed an event without a 'token' string")
                pieces.append(token)
                if first is None and token:
                    first = at
                if body.get("finish_reason") not in (None, "null"):  # "null": the string
                    end = at
                    break
        if end is None:
            raise stream.ended(where)
        stops = payload["stop_sequence"]
        text = perf.trim_at_stops("".join(pieces), stops if isinstance(stops, list) else [])
        prompt = str(payload["prompt"])
        return perf.timed(self, text, (self.previous_prompt, prompt), end, first or end)

    def _payload(self, request: Request) -> dict[str, object]:
        prompt, stop = self.raw_prompt(request)
        payload: dict[str, object] = {
            "prompt": prompt,
            "max_length": request.max_tokens,
            "temperature": request.temperature,
            "stop_sequence": stop,
            "trim_stop": True,  # otherwise the stop sequence is left at the end of the text
            "genkey": "KCPP" + secrets.token_hex(4),
        }
        if self.info.n_ctx:
            payload["max_context_length"] = self.info.n_ctx
        if request.grammar:
            payload["grammar"] = request.grammar
        if request.repeat_penalty != 1.0:
            payload["rep_pen"] = request.repeat_penalty
        if request.images:
            if not self.info.can("vision"):
                raise NoVision(f"{self.url} has no vision projector; {NO_VISION_HINT}")
            # Bare base64 only: a data URI is silently dropped; at most 4 images.
            payload["images"] = [b64(image) for image in request.images[:4]]
        return payload

    @contextlib.contextmanager
    def _tracked(self, payload: dict[str, object]) -> Iterator[None]:
        """While a generation runs, abort_running() knows its key; the prompt sent before
        it is kept aside (koboldcpp reuses the prefix they share: koboldcpp_perf.py)."""
        genkey = str(payload["genkey"])
        previous, self.last_prompt = self.last_prompt, str(payload["prompt"])
        self.previous_prompt = previous
        with self._lock:
            self._running.add(genkey)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(genkey)

    def draw(self, request: DrawRequest) -> Picture:
        # One generation at a time, text or picture: koboldcpp queues the rest.
        return sdapi.draw(self, request)

    def sampler(self, wanted: str) -> str | None:
        return self.images.sampler(wanted) if self.images else None

    def check_vision(self) -> None:
        if not self.info.can("vision"):
            raise NoVision(f"{self.url} has no vision projector loaded; {NO_VISION_HINT}")

    def count_tokens(self, text: str) -> int | None:
        return self.count_with("/api/extra/tokencount", {"prompt": text}, lambda b: b.get("value"))

    def abort_running(self) -> None:
        """koboldcpp keeps generating after the client leaves: stop what we started."""
        with self._lock:
            keys = list(self._running)
        for key in keys:
            with contextlib.suppress(BackendError):
                self.send("POST", "/api/extra/abort", {"genkey": key}, timeout=5)
