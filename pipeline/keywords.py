"""Keywords as pipe keeps them in an answer: one line, separated by commas ("dog, beach,
Eiffel Tower"), readable on stdout and in `pipe search`. `split` reads such an answer back
into keywords (the actions that write dc:subject use it); `normalise` makes any answer,
held to the keywords step's grammar or not, such a list."""

from __future__ import annotations

import re
import unicodedata

SEPARATOR = ", "


def split(answer: str) -> tuple[str, ...]:
    """The keywords of an answer, in order, each stripped; empty ones dropped."""
    return tuple(k.strip() for k in answer.replace("\n", ",").split(",") if k.strip())


def join(keywords: tuple[str, ...] | list[str]) -> str:
    return SEPARATOR.join(keywords)


# -- normalising a model's answer ---------------------------------------------------------
# An answer is read only this far and for this many pieces: a hostile or looping server
# (a 64 MB answer, 10,000 commas) costs bounded time and gives a bounded list.
READ_CHARS = 16_384
READ_PIECES = 400
MAX_WORDS = 3  # a keyword is one to three words
MAX_CHARS = 64  # past this a "keyword" is a sentence the model wrote
CASES = ("auto", "keep", "lower")

# Where a model that ignores the grammar separates keywords: commas (also CJK and
# full-width ones), semicolons, newlines, bars and bullets.
_SEPARATOR = re.compile(r"[,;\n\r\t|\u3001\uff0c\uff1b\u2022\u00b7\u25cf\u25aa\u25e6\u2023\u2219]")
# A list item's bullet or number at a piece's start: "- ", "* ", "1. ", "2) ", "(3) ".
_MARKER = re.compile(r"^\s*(?:[-*+>]+|\(?\d{1,3}[.):]|#\d{1,3})\s+")
# A terminal's escape sequences (CSI, OSC, and the two-character ones): not words.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.?)")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`\u00b4")
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "_": " "})


def normalise(answer: str, limit: int = 12, case: str = "auto") -> tuple[str, ...]:
    """The keywords in a model's answer, held to a grammar or not: split on any separator a
    model uses, each cleaned to letters (any script), digits, spaces and hyphens in one to
    three words, cased by `case` (see `_cased`), duplicates dropped (see `_same`), at most
    `limit`, in the model's order."""
    candidates = [k for k in map(_clean, _pieces(answer)) if k]
    kept: list[str] = []
    seen: set[str] = set()
    for keyword in _cased(candidates, case):
        same = _same(keyword)
        if same not in seen:
            seen.add(same)
            kept.append(keyword)
            if len(kept) >= limit:
                break
    return tuple(kept)


def _pieces(answer: str) -> list[str]:
    text = _ESCAPE.sub("", answer[:READ_CHARS])
    pieces = _SEPARATOR.split(text, maxsplit=READ_PIECES)[:READ_PIECES]
    # "Keywords: dog" or "Here are the keywords: dog": the label is not a keyword.
    return [_MARKER.sub("", p.rsplit(":", 1)[-1]) for p in pieces]


def _clean(piece: str) -> str:
    """One keyword: letters, marks and digits of any script, with single spaces and inner
    hyphens; "" when nothing is left or it is longer than a keyword."""
    text = piece.translate(_APOSTROPHES).translate(_HYPHENS)
    kept = "".join(c if c == "-" or unicodedata.category(c)[0] in "LMN" else " " for c in text)
    words = [w for w in (re.sub("-{2,}", "-", w).strip("-") for w in kept.split()) if w]
    keyword = " ".join(words)
    return keyword if 0 < len(words) <= MAX_WORDS and len(keyword) <= MAX_CHARS else ""


def _cased(keywords: list[str], case: str) -> list[str]:
    """`case = "auto"` keeps a capital only where it says something (a proper noun):
    - an answer all in capitals ("DOG, BEACH") is lowered whole;
    - in an answer where every keyword starts with a capital ("Dog, Eiffel Tower"), the
      first capital says nothing: a keyword stays as written only if it has a capital past
      its first letter ("Eiffel Tower", "New York", "iPhone"), else it is lowered ("dog");
    - otherwise the model wrote common nouns in lower case, so its capitals are meant
      ("beach, Paris, NASA"), except the first keyword's, which may be a sentence's start.
    Keywords in scripts without case are left alone. "keep" changes nothing; "lower"
    lowers everything (languages that capitalise every noun use "keep")."""
    if case == "keep":
        return keywords
    if case == "lower":
        return [k.lower() for k in keywords]
    cased = [k for k in keywords if k.lower() != k.upper()]
    if cased and not any(c.islower() for k in cased for c in k):
        return [k.lower() for k in keywords]
    titled = all(k.lstrip("0123456789 -")[:1].isupper() for k in cased)
    return [
        k if (i > 0 and not titled) or _capital_past_first(k) else k.lower()
        for i, k in enumerate(keywords)
    ]


def _capital_past_first(keyword: str) -> bool:
    letters = [c for c in keyword if c.isalpha()]
    return any(c.isupper() for c in letters[1:])


def _same(keyword: str) -> str:
    """What two keywords that are the same share: case, hyphens and a plural ending of the
    last word ignored ("Sea-shore" and "sea shores"). The plural rule is English's (s, es,
    ies); it only ever merges two keywords of one answer, so other languages lose little."""
    words = keyword.casefold().replace("-", " ").split()
    words[-1] = _singular(words[-1])
    return " ".join(words)


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
