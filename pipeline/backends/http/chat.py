"""OpenAI's chat protocol (`/v1/chat/completions`): what OpenAI-compatible servers speak,
and how llama.cpp servers take images without a media marker."""

from __future__ import annotations

from typing import Any

from pipeline.backends.base import Completion, Request, Timed, Transient, b64
from pipeline.backends.http import stream
from pipeline.backends.http.backend import HttpBackend

# OpenAI's finish reasons in pipe's words ("content_filter" and the like: not said).
REASONS = {"stop": "eos", "length": "limit"}


def post_chat(backend: HttpBackend, request: Request) -> Completion:
    """One `/v1/chat/completions` call to `backend`, for its model (`info.model`)."""
    response = backend.send("POST", "/v1/chat/completions", chat_payload(backend, request))
    backend.raise_for_status(response)
    body = backend.json(response)
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise Transient(f"{backend.url}/v1/chat/completions answered without choices") from None
    usage = body.get("usage") or {}
    return Completion(
        text=str(text),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        stop_reason=REASONS.get(str(choice.get("finish_reason"))),
    )


def post_chat_timed(backend: HttpBackend, request: Request) -> Timed:
    """The same call streamed (`delta.content` pieces, then `[DONE]`): the first piece's
    time, the usage where the server gives it, and llama.cpp's own `timings` (its /v1 puts
    them in the last chunk) where present."""
    payload = chat_payload(backend, request)
    payload.update(stream=True, stream_options={"include_usage": True})
    where = f"{backend.url}/v1/chat/completions"
    chunks = ChatChunks()
    for at, event in stream.events(backend, "/v1/chat/completions", payload):
        if event.data.strip() == "[DONE]":
            return chunks.timed(at)
        chunks.add(at, stream.data(event, where), where)
    raise stream.ended(where)


class ChatChunks:
    """What a chat stream said so far: the text, when it began, the usage and timings."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.first: float | None = None
        self.reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}

    def add(self, at: float, chunk: Any, where: str) -> None:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices", []), list):
            raise Transient(f"{where} streamed a chunk without choices")
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            piece = delta.get("content") if isinstance(delta, dict) else None
            if not isinstance(piece, str | None):
                raise Transient(f"{where} streamed a chunk whose content is not text")
            if piece:
                self.pieces.append(piece)
                self.first = at if self.first is None else self.first
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            self.reason = REASONS.get(str(reason), self.reason)
        for key in ("usage", "timings"):
            if isinstance(chunk.get(key), dict):
                setattr(self, key, chunk[key])

    def timed(self, at: float) -> Timed:
        completion = Completion(
            text="".join(self.pieces),
            prompt_tokens=_count(self.usage.get("prompt_tokens")),
            completion_tokens=_count(self.usage.get("completion_tokens")),
            stop_reason=self.reason,
            timings=self.timings,
        )
        server = stream.llama_timings(self.timings) if self.timings else None
        return Timed(completion, at, self.first if self.first is not None else at, server)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def chat_payload(backend: HttpBackend, request: Request) -> dict[str, Any]:
    """The chat request's body for `backend`'s model."""
    payload: dict[str, Any] = {
        "model": backend.info.model,
        "messages": chat_messages(request),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.grammar:
        payload["grammar"] = request.grammar  # llama.cpp-based servers honour it
    if request.repeat_penalty != 1.0 and backend.penalty_field:
        payload[backend.penalty_field] = request.repeat_penalty
    return payload


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """OpenAI chat messages; images as data-URI `image_url` parts before the text."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if request.images:
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(image)}"}}
            for image in request.images
        ]
        parts.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": request.prompt})
    return messages
