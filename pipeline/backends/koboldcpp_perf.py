"""koboldcpp's own account of its last generation (`GET /api/extra/perf`), as `pipe bench`
reads it after a streamed request.

In koboldcpp 1.76 (gpttype_adapter.cpp) `last_process` is milliseconds per prompt token
processed, `time1*1000/embd_inp.size()`, and `last_eval` milliseconds per generated token
over `last_token_count` tokens. `embd_inp` is the prompt less the prefix koboldcpp kept
from the previous request ("fast forward", model_adapter.cpp ContextFastForward: the
common prefix of the tokens, at most all but one). pipe tokenizes this prompt and the one
it sent before with `/api/extra/tokencount` (the same tokenizer) to know that prefix, so
the prompt's figures are the tokens really processed and the time they took, as
llama.cpp's `prompt_n` leaves out what its cache held. Another client's request in between
would make the prefix unknown: a bench has the server to itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.backends.base import BackendError, Completion, ServerTimings, Timed

if TYPE_CHECKING:
    from pipeline.backends.koboldcpp import KoboldBackend

# /api/extra/perf's stop_reason (expose.h): OUT_OF_TOKENS, EOS_TOKEN_HIT, CUSTOM_STOPPER.
STOP_REASONS = {0: "limit", 1: "eos", 2: "word"}


def timed(
    backend: KoboldBackend,
    text: str,
    prompts: tuple[str | None, str],
    seconds: float,
    first: float,
) -> Timed:
    """The Timed for a finished stream of `prompts[1]` (sent after `prompts[0]`, if any):
    the server's figures where it gives them."""
    previous, prompt = prompts
    ids = prompt_ids(backend, prompt)
    kept = reused(prompt_ids(backend, previous) if previous else [], ids) if ids else 0
    processed = len(ids) - kept if ids is not None else None
    figures = last_perf(backend)
    server = generated = reason = None
    if figures is not None:
        process, evaluate, generated, reason = figures
        server = ServerTimings(
            prompt_tokens=processed,
            prompt_seconds=None if processed is None else process * processed / 1000,
            generated_tokens=generated,
            generation_seconds=evaluate * generated / 1000,
        )
    completion = Completion(
        text=text,
        prompt_tokens=len(ids) if ids is not None else None,
        completion_tokens=generated,
        stop_reason=reason,
    )
    return Timed(completion, seconds, first, server)


def prompt_ids(backend: KoboldBackend, prompt: str) -> list[int] | None:
    """The prompt's tokens by koboldcpp's tokenizer (None when it cannot say)."""
    try:
        response = backend.send("POST", "/api/extra/tokencount", {"prompt": prompt}, timeout=60)
        body: Any = backend.json(response) if response.status_code == 200 else None
    except BackendError:
        return None
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        return None
    return ids


def reused(previous: list[int] | None, ids: list[int]) -> int:
    """How many of `ids` koboldcpp's fast forward keeps from `previous`: their common
    prefix, but never the whole prompt (its loop stops before the last token)."""
    common = 0
    for old, new in zip(previous or [], ids, strict=False):
        if old != new:
            break
        common += 1
    return max(0, min(common, len(ids) - 1))


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
