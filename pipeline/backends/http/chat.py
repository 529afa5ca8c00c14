"""OpenAI's chat protocol (`/v1/chat/completions`): what OpenAI-compatible servers speak,
and how llama.cpp servers take images without a media marker."""

from __future__ import annotations

from typing import Any

from pipeline.backends.base import Completion, Request, Transient, b64
from pipeline.backends.http.backend import HttpBackend


def post_chat(backend: HttpBackend, request: Request) -> Completion:
    """One `/v1/chat/completions` call to `backend`, for its model (`info.model`)."""
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
    response = backend.send("POST", "/v1/chat/completions", payload)
    backend.raise_for_status(response)
    body = backend.json(response)
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise Transient(f"{backend.url}/v1/chat/completions answered without choices") from None
    usage = body.get("usage") or {}
    reason = {"stop": "eos", "length": "limit"}.get(str(choice.get("finish_reason")))
    return Completion(
        text=str(text),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        stop_reason=reason,
    )


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
