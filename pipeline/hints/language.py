"""`language = "de"` in a step: the answer in that language. The step adds "Answer in
German." to its prompt, and a grammar's `[a-z]` (the plain lowercase words a recipe such as
rename-images asks for) takes the lowercase letters of every script, so "straße" and
"日の出" can be said at all."""

from __future__ import annotations

import re

# ISO 639-1 codes (and a few with a region that changes the writing) -> English names.
NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "hy": "Armenian",
    "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "ka": "Georgian",
    "kk": "Kazakh", "ko": "Korean", "la": "Latin", "lt": "Lithuanian", "lv": "Latvian",
    "mk": "Macedonian", "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål",
    "nl": "Dutch", "nn": "Norwegian Nynorsk", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
    "pt-br": "Brazilian Portuguese", "pt-pt": "European Portuguese",
    "zh-cn": "Simplified Chinese", "zh-hans": "Simplified Chinese",
    "zh-tw": "Traditional Chinese", "zh-hant": "Traditional Chinese",
    "en-gb": "British English", "en-us": "American English",
}  # fmt: skip
MAX_NAME = 40  # characters of a language's name
_CODE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})?\Z")
# A name: words of letters (any script), with spaces, hyphens, apostrophes, parentheses.
_NAME = re.compile(r"[^\W\d_][^\W\d_ '’()\-]*(?:[ '’()\-]+[^\W\d_]*)*\)?\Z")

# The lowercase letters of every script a model may name a photo in (GBNF, llama.cpp's
# \u escapes): Latin with its accents, Greek, Cyrillic, Armenian, Hebrew, Arabic, the
# Indic scripts, Thai, Georgian, Hangul, kana and the CJK ideographs; marks where a script
# needs them to write a word at all.
LETTERS = (
    r"[a-z\u00DF-\u00F6\u00F8-\u00FF\u0100-\u024F\u0300-\u036F\u1E00-\u1EFF"
    r"\u03AC-\u03CE\u0430-\u045F\u0460-\u0481\u048A-\u04FF\u0561-\u0587\u05D0-\u05EA"
    r"\u0620-\u065F\u066E-\u06D3\u0900-\u0DFF\u0E01-\u0E3A\u0E40-\u0E4E\u10D0-\u10FF"
    r"\u3041-\u309F\u30A0-\u30FF\u4E00-\u9FFF\uAC00-\uD7A3]"
)


def _code(value: str) -> str:
    """The code pipe knows `value` by ("pt-br", "de" for "de-AT"), or ""."""
    code = value.lower().replace("_", "-")
    if not _CODE.match(code):
        return ""
    if code in NAMES:
        return code
    return code[:2] if code[2:3] == "-" and code[:2] in NAMES else ""


def problem(value: str) -> str:
    """Why `value` is no language ("" when it is one): a code pipe knows, or a name."""
    if not value or _code(value):
        return ""
    shown = value if len(value) <= MAX_NAME else value[: MAX_NAME - 1] + "…"
    if _CODE.match(value.lower()) and value in (value.lower(), value.upper()):
        return f'unknown language code {shown!r}; give its name instead (language = "Klingon")'
    if len(value) > MAX_NAME or not _NAME.match(value):
        return f"expected a language code like de or a name like German, got {shown!r}"
    return ""


def name(value: str) -> str:
    """The language's name as the instruction says it: "de" -> "German"; a name as given."""
    code = _code(value)
    return NAMES[code] if code else value


def instruction(value: str) -> str:
    """What the prompt ends with ("" when no language is set)."""
    return f"Answer in {name(value)}." if value else ""


def widen_letters(grammar: str) -> str:
    """The grammar with each `[a-z]` taking the lowercase letters of every script."""
    return grammar.replace("[a-z]", LETTERS)
