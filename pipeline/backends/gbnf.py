"""GBNF grammars for servers that predate parts of the syntax.

llama.cpp learnt the `x{m,n}` repetition in mid-2024; the server llamafile runs is older, and
a grammar using it does not just fail there: the server crashes. `expand_repetitions` writes
each repetition with the operators every version knows (`x{2,4}` becomes `(x x x? x?)`), so
the recipe and its answers' fingerprints stay the same whichever server runs it.
"""

from __future__ import annotations

import re

_REPEAT = re.compile(r"\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}")
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def expand_repetitions(grammar: str) -> str:
    """The same language without `{m}`, `{m,}` or `{m,n}`; anything else is left as it is."""
    pieces: list[tuple[str, bool]] = []  # (text, is a complete term)
    opened: list[int] = []  # where each open group starts in `pieces`
    i, end = 0, len(grammar)
    while i < end:
        char = grammar[i]
        if char == "#":
            stop = grammar.find("\n", i)
            stop = end if stop < 0 else stop
            pieces.append((grammar[i:stop], False))
        elif char in '"[':
            stop = _literal_end(grammar, i)
            pieces.append((grammar[i:stop], True))
        elif char == "(":
            opened.append(len(pieces))
            stop = i + 1
            pieces.append(("(", False))
        elif char == ")" and opened:
            start = opened.pop()
            group = "".join(text for text, _ in pieces[start:]) + ")"
            del pieces[start:]
            stop = i + 1
            pieces.append((group, True))
        elif char == "{" and (match := _REPEAT.match(grammar, i)) and _last_term(pieces) >= 0:
            at = _last_term(pieces)
            term = pieces[at][0]
            del pieces[at:]
            low = int(match.group(1))
            high = None if match.group(2) and not match.group(3) else int(match.group(3) or low)
            stop = match.end()
            pieces.append((_repeat(term, low, high), True))
        elif name := _NAME.match(grammar, i):
            stop = name.end()
            pieces.append((name.group(), True))
        else:
            stop = i + 1
            pieces.append((char, False))
        i = stop
    return "".join(text for text, _ in pieces)


def _literal_end(grammar: str, start: int) -> int:
    """The index just past the "string" or [class] that opens at `start`."""
    close = "]" if grammar[start] == "[" else '"'
    i = start + 1
    while i < len(grammar):
        if grammar[i] == "\\":
            i += 2
            continue
        if grammar[i] == close:
            return i + 1
        i += 1
    return len(grammar)


def _last_term(pieces: list[tuple[str, bool]]) -> int:
    """Index of the term a repetition applies to (spaces may come between), or -1."""
    at = len(pieces) - 1
    while at >= 0 and not pieces[at][0].strip():
        at -= 1
    return at if at >= 0 and pieces[at][1] else -1


def _repeat(term: str, low: int, high: int | None) -> str:
    parts = [term] * low
    if high is None:
        parts.append(term + "*")
    else:
        parts.extend([term + "?"] * max(0, high - low))
    return "(" + " ".join(parts) + ")" if parts else '""'
