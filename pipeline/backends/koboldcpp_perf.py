"""koboldcpp's own account of its last generation (`GET /api/extra/perf`), as `pipe bench`
reads it after a streamed request.

In koboldcpp 1.76 (gpttype_adapter.cpp) `last_process` is milliseconds per prompt token,
`time1*1000/embd_inp.size()`, and `last_eval` milliseconds per generated token over
`last_token_count` tokens. `embd_inp` is the prompt less the prefix koboldcpp reused from
the previous request ("fast forward"), so a prompt whose first line differs from the last
one's costs its whole length; pipe counts the prompt with `/api/extra/tokencount` (the same
tokenizer) and multiplies. A prompt that shares a long prefix with the previous one would
make the prompt time look longer than it was, by the reused share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.backends.base import BackendError, Completion, ServerTimings, Timed

if TYPE_CHECKING:
    from pipeline.backends.koboldcpp import KoboldBackend

# /api/extra/perf's stop_reason (expose.h): OUT_OF_TOKENS, EOS_TOKEN_HIT, CUSTOM_STOPPER.
STOP_REASONS = {0: "limit", 1: "eos", 2: "word"}


def timed(backend: KoboldBackend, text: str, prompt: str, seconds: float, first: float) -> Timed:
    """The Timed for a finished stream: the server's figures where it gives them."""
    figures = last_perf(backend)
    prompt_tokens = backend.count_tokens(prompt)
    server = None
    generated = None
    reason = None
    if figures is not None:
        process, evaluate, generated, reason = figures
        server = ServerTimings(
            prompt_tokens=prompt_tokens,
            prompt_seconds=None if prompt_tokens is None else process * prompt_tokens / 1000,
            generated_tokens=generated,
            generation_seconds=evaluate * generated / 1000,
        )
    completion = Completion(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=generated,
        stop_reason=reason,
    )
    return Timed(completion, seconds, first, server)


def last_perf(backend: KoboldBackend) -> tuple[float, float, int, str | None] | None:
    """(ms per prompt token, ms per generated token, generated tokens, stop reason) of the
    last generation, or None when the server does not say."""
    try:
        response = backend.send("GET", "/api/extra/perf", timeout=10)
        body: Any = backend.json(response) if response.status_code == 200 else None
    except BackendError:
        return None
    if not isinstance(body, dict):
        return None
    process, evaluate = body.get("last_process"), body.get("last_eval")
    count = body.get("last_token_count")
    if not all(_finite(v) for v in (process, evaluate)) or not isinstance(count, int):
        return None
    if isinstance(count, bool) or count < 0:
        return None
    reason = STOP_REASONS.get(body.get("stop_reason"))  # type: ignore[arg-type]
    return float(process), float(evaluate), count, reason


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value >= 0
        and value != float("inf")
    )


def trim_at_stops(text: str, stops: list[Any]) -> str:
    """The text up to its first stop string, as `trim_stop` gives a non-streamed answer."""
    cut = len(text)
    for stop in stops:
        if isinstance(stop, str) and stop and stop in text:
            cut = min(cut, text.index(stop))
    return text[:cut]
