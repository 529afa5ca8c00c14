"""A fake OpenAI-compatible server (`/v1/models`, `/v1/chat/completions`) as
../shared/docs/captures/llama-cpp-python/ shows it: the answer echoes the request's `model`,
bad JSON is a 500 in text/plain, an over-long prompt a 400 `context_length_exceeded`.
`owned_by` says which server it plays ("me": llama-cpp-python, "vllm", "library": Ollama,
"organization_owner": LM Studio, "llamacpp": llama-server's /v1); `api_key` makes it refuse
requests without that Bearer token (401, OpenAI's error shape); `vision` makes it accept
`image_url` parts (else 400, as servers without a projector answer); `echo_auth` makes its
401 and "500" failures repeat the Authorization header they got, as careless proxies do."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes import streaming
from tests.fakes.llama import FakeServer, _BadJSON, _Handler, count_tokens

HEADERS = [("server", "uvicorn"), ("content-type", "application/json")]


class FakeOpenAI(FakeServer):
    kind = "openai"

    def __init__(
        self,
        *,
        owned_by: str = "me",
        models: list[str] | None = None,
        api_key: str | None = None,
        vision: bool = False,
        echo_auth: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "models/gemma-3-270m-q4_k_m.gguf")
        super().__init__(**kwargs)
        self.owned_by = owned_by
        self.models = models or [self.model]
        self.api_key = api_key
        self.vision = vision
        self.echo_auth = echo_auth
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.bodies: list[dict[str, Any]] = []  # each chat request's body

    def route(self, handler: _Handler, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.authorizations.append(handler.headers.get("Authorization"))
        if self.api_key and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            error = {
                "message": f"Incorrect API key provided{self._echo(handler)}",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
            handler.send(401, {"error": error}, HEADERS)
            return
        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "owned_by": self.owned_by, "permissions": []}
                for m in self.models
            ]
            handler.send(200, {"object": "list", "data": data}, HEADERS)
        elif method == "POST" and path == "/v1/chat/completions":
            self._chat(handler, body)
        else:
            handler.send(404, {"detail": "Not Found"}, HEADERS)

    def _echo(self, handler: _Handler) -> str:
        return f": {handler.headers.get('Authorization')}" if self.echo_auth else ""

    def _chat(self, handler: _Handler, body: Any) -> None:
        if isinstance(body, _BadJSON) or not isinstance(body, dict):
            handler.send(
                500, b"Internal Server Error", [("content-type", "text/plain; charset=utf-8")]
            )
            return
        with self._lock:
            self.bodies.append(body)
        # A streamed request takes its failure in streaming.openai.
        failure = None if body.get("stream") else self.next_failure()
        if failure == "500":
            handler.send(
                500,
                f"Internal Server Error{self._echo(handler)}".encode(),
                [("content-type", "text/plain; charset=utf-8")],
            )
            return
        if failure == "busy":
            handler.send(503, {"error": {"message": "busy", "type": "server_error"}}, HEADERS)
            return
        if failure == "drop":
            handler.drop()
            return
        if failure == "hang":
            time.sleep(3600)
        texts, images = [], 0
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") == "image_url":
                        images += 1
                    elif part.get("type") == "text":
                        texts.append(str(part.get("text", "")))
            else:
                texts.append(str(content))
        if images and not self.vision:
            error = {"message": "image input is not supported", "type": "invalid_request_error"}
            handler.send(400, {"error": error}, HEADERS)
            return
        prompt = "\n".join(texts)
        used = count_tokens(prompt) + 4 * images
        wanted = used + int(body.get("max_tokens") or 16)
        if wanted > self.n_ctx:
            message = (
                f"This model's maximum context length is {self.n_ctx} tokens, however you"
                f" requested {wanted} tokens ({used} in your prompt; {body.get('max_tokens')}"
                " for the completion). Please reduce your prompt; or completion length."
            )
            error = {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
            handler.send(400, {"error": error}, HEADERS)
            return
        if body.get("stream"):
            streaming.openai(self, handler, body, prompt, used)
            return
        with self._slots:  # served one at a time, as llama-cpp-python does
            text = "" if failure == "empty" else self.generate(prompt, list(body.get("stop") or []))
        if failure == "garbage":
            handler.send(200, b"<html>oops", [("content-type", "text/html")])
            return
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"content": text, "role": "assistant"},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": used,
                "completion_tokens": count_tokens(text),
                "total_tokens": used + count_tokens(text),
            },
        }
        handler.send(200, answer, HEADERS)
