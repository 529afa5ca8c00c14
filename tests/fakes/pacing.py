"""Known latency for the fake servers: a prompt costs `prompt_token_seconds` per token, each
generated token `token_seconds`, and the pieces come out as they are "generated". What a
generation really took (the sleeps' real lengths) is kept for the fakes to report, so
their timings are honest: what `pipe bench` compares with its own clock.

Each piece is due at a time reckoned from the start, not after the previous sleep, so a
loaded machine's late wake-ups do not add up over a long answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Paced:
    """One generation as it happened."""

    prompt_tokens: int
    prompt_seconds: float
    tokens: int
    seconds: float  # generating, after the prompt

    @property
    def ms_per_prompt_token(self) -> float:  # koboldcpp's last_process
        return self.prompt_seconds * 1000 / max(1, self.prompt_tokens)

    @property
    def ms_per_token(self) -> float:  # koboldcpp's last_eval
        return self.seconds * 1000 / max(1, self.tokens)


@dataclass(frozen=True)
class Pace:
    prompt_token_seconds: float = 0.0
    token_seconds: float = 0.0

    def run(self, prompt_tokens: int, text: str, done: list[Paced]) -> Iterator[str]:
        """`text`'s tokens, each when it is due; what it took is appended to `done` once the
        last piece has been taken."""
        started = time.perf_counter()
        _sleep_until(started + prompt_tokens * self.prompt_token_seconds)
        generating = time.perf_counter()
        pieces = split_tokens(text)
        for n, piece in enumerate(pieces, 1):
            _sleep_until(generating + n * self.token_seconds)
            yield piece
        ended = time.perf_counter()
        done.append(Paced(prompt_tokens, generating - started, len(pieces), ended - generating))


def split_tokens(text: str) -> list[str]:
    """The fake tokenizer's tokens (tests/fakes/llama.count_tokens: 3 bytes each), as whole
    characters: pieces of up to 3 bytes, a longer character alone."""
    pieces: list[str] = []
    current, size = "", 0
    for char in text:
        width = len(char.encode("utf-8", "surrogatepass"))
        if current and size + width > 3:
            pieces.append(current)
            current, size = "", 0
        current += char
        size += width
    if current:
        pieces.append(current)
    return pieces


def _sleep_until(deadline: float) -> None:
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)
