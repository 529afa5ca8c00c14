"""llama.cpp's server and llamafile's classic server: `/props` and raw `/completion`."""

from __future__ import annotations

from pipeline.backends.base import (
    Backend,
    Completion,
    ContextOverflow,
    Request,
    ServerInfo,
    Transient,
)
from pipeline.prompts import guess_format


class LlamaCppBackend(Backend):
    kind = "llama.cpp"

    def probe(self) -> ServerInfo:
        response = self._send("GET", "/props", timeout=10)
        self._raise_for_status(response)
        props = self._json(response)
        settings = props.get("default_generation_settings") or {}
        model = str(props.get("model_alias") or props.get("model_path") or "")
        total_slots = props.get("total_slots")
        modalities = props.get("modalities") or {}
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=model.rsplit("/", 1)[-1],
            slots=int(total_slots) if isinstance(total_slots, int) and total_slots > 0 else 1,
            n_ctx=settings.get("n_ctx") or props.get("n_ctx"),
            chat_format=guess_format(model, str(props.get("chat_template") or "")),
            vision=bool(modalities.get("vision")),
            version=str(props.get("build_info") or ""),
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        prompt, stop = self.raw_prompt(request)
        payload: dict[str, object] = {
            "prompt": prompt,
            "n_predict": request.max_tokens,
            "temperature": request.temperature,
            "stop": stop,
            "cache_prompt": True,
        }
        if request.grammar:
            payload["grammar"] = request.grammar
        response = self._send("POST", "/completion", payload)
        if response.status_code == 400:
            body = _safe_json(response)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
                raise ContextOverflow(
                    str(error.get("message")), error.get("n_prompt_tokens"), error.get("n_ctx")
                )
        self._raise_for_status(response)
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("content"), str):
            raise Transient(f"{self.url}/completion answered without a 'content' string")
        timings = body.get("timings") or {}
        return Completion(
            text=body["content"],
            prompt_tokens=body.get("tokens_evaluated", timings.get("prompt_n")),
            completion_tokens=body.get("tokens_predicted", timings.get("predicted_n")),
            stop_reason=_stop_reason(body),
            timings=timings,
        )

    def count_tokens(self, text: str) -> int | None:
        return self._count_with("/tokenize", {"content": text}, lambda b: len(b["tokens"]))


def _stop_reason(body: dict[str, object]) -> str | None:
    """New builds say `stop_type`; llamafile and older builds use three booleans."""
    stop_type = body.get("stop_type")
    if isinstance(stop_type, str) and stop_type:
        return {"none": None}.get(stop_type, stop_type)
    for flag, reason in (
        ("stopped_eos", "eos"),
        ("stopped_word", "word"),
        ("stopped_limit", "limit"),
    ):
        if body.get(flag):
            return reason
    return None


def _safe_json(response: object) -> object:
    try:
        return response.json()  # type: ignore[attr-defined]
    except ValueError:
        return None
