"""Keywords as pipe keeps them in an answer: one line, separated by commas ("dog, beach,
Eiffel Tower"), readable on stdout and in `pipe search`. `split` reads such an answer back
into keywords (the actions that write dc:subject use it); the keywords step normalises."""

from __future__ import annotations

SEPARATOR = ", "


def split(answer: str) -> tuple[str, ...]:
    """The keywords of an answer, in order, each stripped; empty ones dropped."""
    return tuple(k.strip() for k in answer.replace("\n", ",").split(",") if k.strip())


def join(keywords: tuple[str, ...] | list[str]) -> str:
    return SEPARATOR.join(keywords)
