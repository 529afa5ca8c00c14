"""OpenAI-compatible servers (`/v1/models`, `/v1/chat/completions`): llama-cpp-python,
llamafile `--v2`, vLLM, LM Studio, Ollama. The server applies the chat template itself."""

from __future__ import annotations

from typing import Any

from pipeline.backends.base import (
    Completion,
    DefaultPort,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    Timed,
    Transient,
    tiny_jpeg,
)
from pipeline.backends.http import HttpBackend
from pipeline.backends.http.chat import post_chat, post_chat_timed

NO_VISION_HINT = "start the server with a vision model (for llama.cpp: --mmproj PROJECTOR)"


# Servers that do not say how many requests they serve at once get this many (-j sets it).
# vLLM batches hundreds; llama-cpp-python and LM Studio queue what they cannot serve yet.
DEFAULT_SLOTS = 4
# What each server calls the repetition penalty, by the `owned_by` of its /v1/models:
# llama.cpp's family takes `repeat_penalty`, vLLM `repetition_penalty`; others (OpenAI
# itself refuses unknown fields, Ollama ignores them) get none.
PENALTY_FIELDS = {
    "me": "repeat_penalty",  # llama-cpp-python
    "llamacpp": "repeat_penalty",  # llama-server's /v1
    "organization_owner": "repeat_penalty",  # LM Studio (llama.cpp inside)
    "vllm": "repetition_penalty",
}


class OpenAIBackend(HttpBackend):
    kind = "openai"
    title = "an OpenAI API"
    signature = "/v1/models"
    # Any list of models will do (koboldcpp and llama.cpp list theirs too): tried last.
    fallback = True
    prefix = "openai:"  # `openai:URL` skips detection: speak OpenAI's API to it
    prefix_help = "openai:URL (OpenAI-compatible: vLLM, Ollama, LM Studio)"
    ports = (
        DefaultPort(11434, "start Ollama ('ollama serve') or pass --backend URL", rank=30),
        DefaultPort(
            1234, "start LM Studio's server ('lms server start') or pass --backend URL", rank=40
        ),
    )
    vision_hint = "serve a vision model (e.g. llava) and pass --model-name NAME"
    slots_known = False  # /v1/models does not say: DEFAULT_SLOTS, or a share of -j

    @classmethod
    def recognises(cls, body: Any) -> bool:
        return True

    def probe(self) -> ServerInfo:
        response = self.send("GET", "/v1/models", timeout=10)
        self.raise_for_status(response)
        body = self.json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise Transient(f"{self.url}/v1/models did not list models")
        models = [m for m in data if isinstance(m, dict) and m.get("id")]
        ids = [str(m["id"]) for m in models]
        if self.model_name:
            chosen = next((m for m in models if m["id"] == self.model_name), {})
            if ids and not chosen:
                raise Rejected(
                    f"{self.url} has no model {self.model_name!r}; it serves: {', '.join(ids)}"
                )
            model = self.model_name
        elif len(ids) > 1:  # Ollama and LM Studio list every model they have
            raise Rejected(
                f"{self.url} serves several models ({', '.join(ids[:8])}); pick one with"
                " --model-name"
            )
        else:
            chosen = models[0] if models else {}
            model = ids[0] if ids else ""
        meta = chosen.get("meta") or {}
        self.penalty_field = PENALTY_FIELDS.get(str(chosen.get("owned_by", "")))
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=model,
            slots=DEFAULT_SLOTS,
            n_ctx=meta.get("n_ctx"),
            abilities=frozenset({"text", "vision"}),  # vision unknown until check_vision()
            vision_api="chat",
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        return post_chat(self, request)

    def complete_timed(self, request: Request) -> Timed:
        return post_chat_timed(self, request)

    def check_vision(self) -> None:
        try:
            self.complete(Request("Describe.", max_tokens=1, images=(tiny_jpeg(),)))
        except Rejected as e:
            raise NoVision(f"{self.url} cannot take images ({e}); {NO_VISION_HINT}") from None
        except Transient as e:
            if "image" in str(e).lower():
                raise NoVision(f"{self.url} cannot take images ({e}); {NO_VISION_HINT}") from None
            raise
