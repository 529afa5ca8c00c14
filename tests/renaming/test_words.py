"""`|words`: names from answers that keep the letters of every script, NFC, within
NAME_MAX bytes cut on a character boundary with the extension kept."""

from __future__ import annotations

import unicodedata

import pytest

from pipeline.renaming.names import MAX_BYTES, safe_filename, slug, words
from pipeline.templates import compile_template
from tests.renaming.test_naming import HOSTILE, assert_safe_name


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Straße am Meer", "straße-am-meer"),
        ("日の出", "日の出"),
        ("Закат над морем", "закат-над-морем"),
        ("Ηλιοβασίλεμα στη θάλασσα", "ηλιοβασίλεμα-στη-θάλασσα"),
        ("غروب الشمس فوق البحر", "غروب-الشمس-فوق-البحر"),
        ("सूर्यास्त समुद्र", "सूर्यास्त-समुद्र"),
        ("노을 바다", "노을-바다"),
        ("Crème brûlée à Paris", "crème-brûlée-à-paris"),
        ("Cre\u0300me bru\u0302le\u0301e", "crème-brûlée"),  # NFD in, NFC out
        ("ﬁsh ＡＢＣ", "fish-abc"),
        ("l'été à Paris", "lété-à-paris"),
        ("Title: «Straße am Meer».", "straße-am-meer"),
        ("a\u202egpj.exe", "a-gpj"),  # the override dropped, the made-up extension too
        ("../../etc/passwd", "etc-passwd"),
        ("\u0301alone mark", "alone-mark"),
        ("🌅🌊", ""),
    ],
)
def test_words(answer: str, expected: str) -> None:
    assert words(answer) == expected
    assert unicodedata.is_normalized("NFC", words(answer))


@pytest.mark.parametrize("answer", [a for a in HOSTILE if a.isascii()])
def test_ascii_answers_are_named_as_by_slug(answer: str) -> None:
    assert words(answer) == slug(answer)
    assert words(answer, "_", 3) == slug(answer, "_", 3)


@pytest.mark.parametrize("answer", HOSTILE)
def test_hostile_answers_make_safe_names(answer: str) -> None:
    stem = words(answer)
    if stem:
        assert_safe_name(safe_filename(stem, ".jpg"))


@pytest.mark.parametrize("word", ["straße", "日の出", "закат", "θάλασσα", "غروب", "सूर्यास्त", "노을"])
@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_names_at_name_max_in_every_script(word: str, ext: str) -> None:
    name = safe_filename(words(" ".join([word] * 200), max_words=200), ext)
    raw = name.encode("utf-8")
    assert len(raw) <= MAX_BYTES and name.endswith(ext)
    assert len(raw) > MAX_BYTES - 4 - len("-")  # cut at the last whole character that fits
    assert unicodedata.is_normalized("NFC", name)
    assert_safe_name(name)


def test_the_filters_are_registered() -> None:
    template = compile_template("{answer|words}+{answer|words_}")
    assert template.render({"answer": "Straße am Meer"}) == "straße-am-meer+straße_am_meer"
