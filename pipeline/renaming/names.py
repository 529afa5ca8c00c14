"""Turn untrusted model answers into safe file names, and plan collision-free renames.

A model's answer is hostile input: it may hold path separators, control characters,
Windows device names, invisible bidi overrides or far too much text. Everything here is
pure string work; the disk is only consulted through the `exists` callback of
`plan_renames`, and nothing is ever renamed by this module.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from pipeline.templates import register_filter

# Per-component limit of ext4/APFS/btrfs in bytes; NTFS counts UTF-16 units, never more.
MAX_BYTES = 255
# A broken `exists` that always says yes must not hang a batch.
_MAX_SUFFIX = 100_000


class UnusableName(ValueError):
    """No safe file name can be made; the message is one line saying why."""


# --- slug -------------------------------------------------------------------------------

_QUOTES = "\"'`“”‘’„‚«»‹›「」『』"
_SPACES = " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
# Quotes, whitespace and markdown decoration a model wraps around an answer ("**Title:**").
# str.strip, not a regex: `[...]+$` backtracks quadratically on long runs of junk.
_EDGE_JUNK = _SPACES + _QUOTES + "*#_>-"
_TRAILING_PUNCT = _EDGE_JUNK + ".,;:!?"
_LABEL = re.compile(r"(?:answer|title|caption|file[\s_-]?name)\s*[:：]", re.IGNORECASE)
# "sunset.jpg" -> "sunset"; needs a letter first so "pi is 3.14" keeps its number.
_INVENTED_EXT = re.compile(r"(?<=[^\s.])\.[a-z][a-z0-9]{1,4}$", re.IGNORECASE)
# Letters NFKD does not decompose into ASCII.
_TRANSLIT = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "þ": "th", "ð": "d"}
)
# "don't" -> "dont", not "don-t".
_APOSTROPHE = re.compile(r"(?<=[a-z0-9])['’](?=[a-z0-9])")
_WORD = re.compile(r"[a-z0-9]+")


def _strip_junk(text: str) -> str:
    text = text.strip(_EDGE_JUNK)
    while m := _LABEL.match(text):
        text = text[m.end() :].strip(_EDGE_JUNK)
    return _INVENTED_EXT.sub("", text.rstrip(_TRAILING_PUNCT))


def _answer_line(text: str) -> str:
    # The first line with content; a bare "Title:" or a lone quote line is not content.
    for line in text.splitlines():
        cleaned = _strip_junk(line)
        if cleaned:
            return cleaned
    return ""


def slug(text: str, sep: str = "-", max_words: int = 12) -> str:
    """Lowercase ASCII words of the answer joined by `sep`; "" when nothing usable remains."""
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    s = unicodedata.normalize("NFKD", _answer_line(text).lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    # NFKD can yield capitals ("ℌ" -> "H"), so lower again before mapping.
    s = _APOSTROPHE.sub("", s.lower().translate(_TRANSLIT))
    return sep.join(_WORD.findall(s)[:max_words])


register_filter("slug", slug)
register_filter("slug_", lambda s: slug(s, "_"))

# Apostrophes inside a word, in any script ("l'été" -> "lété", as slug's "dont").
_APOSTROPHE_ANY = re.compile(r"(?<=\w)['’](?=\w)")


def words(text: str, sep: str = "-", max_words: int = 12) -> str:
    """The answer's words in every script, lower case, joined by `sep`: "Straße am Meer"
    -> "straße-am-meer", "日の出" -> "日の出". NFKC first (a "ﬁ" ligature or a full-width
    "Ａ" is a plain letter), so the result is NFC; "" when no letter or digit remains. For
    plain ASCII answers it is `slug`."""
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    s = unicodedata.normalize("NFKC", _answer_line(text)).lower()
    s = _APOSTROPHE_ANY.sub("", s)
    found: list[str] = []
    current: list[str] = []
    for c in s + " ":
        kind = unicodedata.category(c)[0]
        if kind in "LN" or (kind == "M" and current):  # no word starts with a lone mark
            current.append(c)
        elif current:
            found.append("".join(current))
            current = []
            if len(found) == max_words:
                break
    return unicodedata.normalize("NFC", sep.join(found))


register_filter("words", words)
register_filter("words_", lambda s: words(s, "_"))


# --- safe_filename ----------------------------------------------------------------------

# Path separators plus the characters Windows forbids (":" would even open an NTFS stream).
_UNSAFE = re.compile(r'[/\\<>:"|?*]+')
# Cc: NUL and controls; Cf: invisible format chars incl. bidi overrides that disguise an
# extension ("gpj.exe"); Cs: lone surrogates, which cannot be encoded at all.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in [*"0123456789", "¹", "²", "³"]}
)


def _show(text: str, limit: int = 60) -> str:
    # repr() escapes newlines, so error messages stay on one line.
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _clean_stem(stem: str) -> str:
    out: list[str] = []
    for c in unicodedata.normalize("NFC", stem):
        if c.isspace():
            out.append(" ")  # \n, \r, \t, NBSP, U+2028 ...: keep the word break, lose the char
        elif unicodedata.category(c) not in _DROPPED_CATEGORIES:
            out.append(c)
    s = _UNSAFE.sub("-", "".join(out))
    s = re.sub(r" {2,}", " ", s)
    # A leading "." hides the file, a leading "-" reads as an option to shell tools;
    # Windows silently drops trailing dots and spaces.
    return s.lstrip(" .-").rstrip(" .")


def _fit(stem: str, budget: int) -> str:
    """Cut to `budget` UTF-8 bytes at a character boundary, then drop dangling separators."""
    raw = stem.encode("utf-8")
    if len(raw) <= budget:
        return stem
    return raw[: max(budget, 0)].decode("utf-8", "ignore").rstrip(" .-_")


def _device_part(stem: str) -> str:
    # Windows reserves "CON" also as "con.txt" and "CON .jpg": only the part before the
    # first dot, minus trailing spaces, counts.
    return stem.split(".", 1)[0].rstrip(" ")


def _is_reserved(stem: str) -> bool:
    return _device_part(stem).casefold() in _RESERVED


def _check_ext(ext: str) -> None:
    if ext == "":
        return
    bad = (
        not ext.startswith(".")
        or len(ext) < 2
        or ext.endswith(".")
        or any(
            c.isspace() or _UNSAFE.match(c) or unicodedata.category(c) in _DROPPED_CATEGORIES
            for c in ext
        )
    )
    if bad:
        raise UnusableName(f"unusable extension {_show(ext)}")


def safe_filename(stem: str, ext: str, max_bytes: int = MAX_BYTES) -> str:
    """One safe path component from a rendered (untrusted) stem plus a file extension."""
    _check_ext(ext)
    budget = max_bytes - len(ext.encode("utf-8"))
    if budget < 1:
        raise UnusableName(f"extension {_show(ext)} leaves no room in {max_bytes} bytes")
    s = _fit(_clean_stem(stem), budget)
    if s and _is_reserved(s):
        head = s.split(".", 1)[0]  # "CON " -> "CON_", "con.txt" -> "con_.txt"
        s = _fit(head.rstrip(" ") + "_" + s[len(head) :], budget)
    if not s or _is_reserved(s):
        raise UnusableName(f"no usable file name in {_show(stem)}")
    return s + ext


# --- plan_renames -----------------------------------------------------------------------


def _casekey(text: str) -> str:
    # Canonical caseless match (Unicode 3.13): what macOS and Windows treat as one name,
    # including NFC vs NFD spellings of "é".
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def _slot(folder: Path, name: str) -> tuple[str, str]:
    # The folder is compared caselessly too: "Photos/" and "photos/" may be one folder.
    return _casekey(os.path.abspath(folder)), _casekey(name)


def _check_component(name: str) -> None:
    seps = {"/", "\\", os.sep, os.altsep} - {None}
    if name in ("", ".", "..") or "\0" in name or any(s in name for s in seps):
        raise UnusableName(f"not a single file name: {_show(name)}")
    if len(name.encode("utf-8")) > MAX_BYTES:
        raise UnusableName(f"file name longer than {MAX_BYTES} bytes: {_show(name)}")


def _numbered(name: str, n: int) -> str:
    """`<stem>-<n><ext>`, shortening the stem so the whole stays within MAX_BYTES."""
    stem, ext = os.path.splitext(name)
    tail = f"-{n}{ext}"
    cut = _fit(stem, MAX_BYTES - len(tail.encode("utf-8")))
    if not cut:
        raise UnusableName(f"no room for a '-{n}' suffix in {_show(name)}")
    return cut + tail


_RUN_SUFFIX = re.compile(r"-([1-9][0-9]{0,8})$")


def _already_named(current: str, desired: str) -> bool:
    # Caseless, so a case-only change never becomes "beach-2.jpg" on macOS/Windows, where
    # the file itself answers `exists("beach.jpg")`.
    if _casekey(current) == _casekey(desired):
        return True
    # An earlier run resolved a collision: "sunset-2.jpg" for "sunset.jpg" stays put.
    m = _RUN_SUFFIX.search(os.path.splitext(current)[0])
    if not m or int(m.group(1)) < 2:
        return False
    try:
        return _casekey(_numbered(desired, int(m.group(1)))) == _casekey(current)
    except UnusableName:
        return False


def _blocked(
    old: Path,
    new: Path,
    taken: set[tuple[str, str]],
    exists: Callable[[Path], bool],
    also_free: Callable[[Path, Path], list[Path]] | None,
) -> bool:
    extra = also_free(old, new) if also_free else []
    return any(_slot(p.parent, p.name) in taken or exists(p) for p in [new, *extra])


def plan_renames(
    wanted: list[tuple[Path, str]],
    exists: Callable[[Path], bool] = os.path.lexists,
    also_free: Callable[[Path, Path], list[Path]] | None = None,
) -> list[tuple[Path, Path]]:
    """(old, new) pairs, in input order, each new name unique and inside old's folder.

    Every current name in the batch counts as taken, so the plan is safe whatever order
    the renames run in; names are compared caselessly. `also_free(old, new)` names more
    paths that must be free for `new` to be chosen (the companions that move with a photo:
    IMG_1.CR2 must not land on someone else's raw file).
    """
    taken = {_slot(old.parent, old.name) for old, _ in wanted}
    # Taken names only accumulate, so the next answer "sunset" resumes where the last one
    # stopped instead of re-probing -2, -3, ... (quadratic for big batches).
    last_n: dict[tuple[str, str], int] = {}
    plan: list[tuple[Path, Path]] = []
    for old, name in wanted:
        _check_component(name)
        if _already_named(old.name, name):
            continue
        folder = old.parent
        wanted_slot = _slot(folder, name)
        n = last_n.get(wanted_slot, 1)
        candidate = name if n == 1 else _numbered(name, n)
        while _blocked(old, folder / candidate, taken, exists, also_free):
            n += 1
            if n > _MAX_SUFFIX:
                raise UnusableName(f"no free name like {_show(name)} in {_show(str(folder))}")
            candidate = _numbered(name, n)
        new = folder / candidate
        # Belt and braces: a drive ("C:x") or anything else must not move the file.
        if new.parent != folder or new.name != candidate:
            raise UnusableName(f"{_show(candidate)} would leave the folder {_show(str(folder))}")
        taken.add(_slot(folder, candidate))
        for extra in also_free(old, new) if also_free else []:
            taken.add(_slot(extra.parent, extra.name))
        last_n[wanted_slot] = n
        plan.append((old, new))
    return plan
