"""OpenAI-compatible servers (`/v1/models`, `/v1/chat/completions`): llama-cpp-python,
llamafile `--v2`, vLLM, LM Studio, Ollama. The server applies the chat template itself."""

from __future__ import annotations

from pipeline.backends.base import Backend, Completion, Request, ServerInfo, Transient


class OpenAIBackend(Backend):
    kind = "openai"

    def probe(self) -> ServerInfo:
        response = self._send("GET", "/v1/models", timeout=10)
        self._raise_for_status(response)
        body = self._json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise Transient(f"{self.url}/v1/models did not list models")
        model = str(data[0].get("id", "")) if data and isinstance(data[0], dict) else ""
        meta = data[0].get("meta") or {} if data and isinstance(data[0], dict) else {}
        self.info = ServerInfo(
            kind=self.kind, url=self.url, model=model, slots=1, n_ctx=meta.get("n_ctx")
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        messages = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        payload: dict[str, object] = {
            "model": self.info.model if self.info else "",
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.grammar:
            payload["grammar"] = request.grammar  # llama.cpp-based servers honour it
        response = self._send("POST", "/v1/chat/completions", payload)
        self._raise_for_status(response)
        body = self._json(response)
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise Transient(f"{self.url}/v1/chat/completions answered without choices") from None
        usage = body.get("usage") or {}
        reason = {"stop": "eos", "length": "limit"}.get(str(choice.get("finish_reason")))
        return Completion(
            text=str(text),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            stop_reason=reason,
        )
