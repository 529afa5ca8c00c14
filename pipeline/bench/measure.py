"""From timed requests to Figures: each figure is the median over the repeats of what each
request measured, so one slow request (a busy box, a first picture) does not move it.

Per request, for biotics:
- seconds: pipe's clock, from sending the request to the last byte of the answer.
- prompt tokens and generated tokens: the server's count (its own timings, else the
  counts in its answer); None where it gives none (koboldcpp's native API without timings).
- prompt tokens/s: the server's prompt tokens over the server's prompt seconds; where the
  server reports no timings but the answer was streamed, prompt tokens over the time to the
  first streamed piece (a lower bound: it includes the network and the first token).
- generated tokens/s: the server's generated tokens over its generation seconds; where it
  reports no timings but streamed, the tokens after the first over the time after it.
- overhead: pipe's seconds minus the server's own (prompt + generation), in ms, only where
  the server reports both.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.backends import ServerTimings, Timed


def server_account(timed: Timed) -> ServerTimings | None:
    """The server's own account of a request: what the backend filled in, else llama.cpp's
    `timings` in the answer (its server and the embedded one report them unasked)."""
    if timed.server is not None:
        return timed.server
    t = timed.completion.timings
    if not isinstance(t, dict) or not t:
        return None

    def number(key: str, scale: float = 1.0) -> float | None:
        value = t.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        return float(value) * scale if ok else None

    prompt_n, generated_n = number("prompt_n"), number("predicted_n")
    return ServerTimings(
        prompt_tokens=int(prompt_n) if prompt_n is not None else None,
        prompt_seconds=number("prompt_ms", 0.001),
        generated_tokens=int(generated_n) if generated_n is not None else None,
        generation_seconds=number("predicted_ms", 0.001),
    )


@dataclass(frozen=True)
class OneRequest:
    """What one biotics request measured (None: cannot be told for this request)."""

    seconds: float
    first_token: float | None
    prompt_tokens: int | None
    generated_tokens: int | None
    prompt_per_second: float | None
    generated_per_second: float | None
    overhead_ms: float | None
    prompt_rate_from: str | None  # "server" | "first token" | None


def one_request(timed: Timed) -> OneRequest:
    server = server_account(timed)
    completion = timed.completion
    prompt = _first(server and server.prompt_tokens, completion.prompt_tokens)
    generated = _first(server and server.generated_tokens, completion.completion_tokens)
    prompt_rate, rate_from = None, None
    if server and prompt is not None and _positive(server.prompt_seconds):
        prompt_rate, rate_from = prompt / server.prompt_seconds, "server"  # type: ignore[operator]
    elif prompt is not None and _positive(timed.first_token):
        prompt_rate, rate_from = prompt / timed.first_token, "first token"  # type: ignore[operator]
    generated_rate = None
    if server and generated is not None and _positive(server.generation_seconds):
        generated_rate = generated / server.generation_seconds  # type: ignore[operator]
    elif generated and timed.first_token is not None and timed.seconds > timed.first_token:
        generated_rate = (generated - 1) / (timed.seconds - timed.first_token)
    server_seconds = server.seconds if server else None
    overhead = (timed.seconds - server_seconds) * 1000 if server_seconds is not None else None
    return OneRequest(
        seconds=timed.seconds,
        first_token=timed.first_token,
        prompt_tokens=prompt,
        generated_tokens=generated,
        prompt_per_second=prompt_rate,
        generated_per_second=generated_rate,
        overhead_ms=overhead,
        prompt_rate_from=rate_from,
    )


def biotics_figures(timed: Sequence[Timed]) -> dict[str, Any]:
    """The medians of `timed` as Figures' biotics fields (and `settings` notes)."""
    each = [one_request(t) for t in timed]
    rate_from = {r.prompt_rate_from for r in each if r.prompt_rate_from}
    return {
        "seconds": median([r.seconds for r in each]),
        "runs": len(each),
        "prompt_tokens": median_int([r.prompt_tokens for r in each]),
        "prompt_per_second": median([r.prompt_per_second for r in each]),
        "first_token_seconds": median([r.first_token for r in each]),
        "generated_tokens": median_int([r.generated_tokens for r in each]),
        "generated_per_second": median([r.generated_per_second for r in each]),
        "overhead_ms": median([r.overhead_ms for r in each]),
        "settings": {
            "prompt_rate_from": "/".join(sorted(rate_from)) or None,
            "streamed": any(r.first_token is not None for r in each),
        },
    }


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values known (None when none is)."""
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None


def median_int(values: Sequence[int | None]) -> int | None:
    """A count's median, still a count (the lower middle of an even number)."""
    known = [v for v in values if v is not None]
    return int(statistics.median_low(known)) if known else None


def _first(*values: int | None | Any) -> int | None:
    return next((int(v) for v in values if isinstance(v, int) and not isinstance(v, bool)), None)


def _positive(value: float | None) -> bool:
    return value is not None and value > 0
