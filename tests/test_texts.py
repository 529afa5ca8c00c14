"""pipeline.texts: decoding, the head kept and hashed, fitting to the context."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.texts import NotText, decode, fit, load_text
from tests.fakes.llama import count_tokens


def test_decode_rules() -> None:
    with pytest.raises(NotText, match="empty"):
        decode(b"")
    with pytest.raises(NotText, match="binary"):
        decode(b"PK\x03\x04\x00\x00")
    loaded = decode(b"caf\xe9")
    assert loaded.text == "caf\ufffd" and "invalid UTF-8" in loaded.notes[0]
    assert decode("héllo".encode("utf-16")).text == "héllo"
    assert decode(b"\xef\xbb\xbfbom").text == "bom"


def test_load_text_keeps_a_head_and_hashes_everything(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes("é".encode() * 100)
    loaded = load_text(str(path), max_bytes=51)
    assert loaded.text == "é" * 25 and loaded.size == 200 and len(loaded.hash) == 64
    assert load_text(str(path), 10_000).hash == loaded.hash


def test_fit_uses_the_tokenizer_only_when_needed() -> None:
    calls: list[int] = []

    def counter(text: str) -> int:
        calls.append(len(text))
        return count_tokens(text)

    assert fit("short text", 100, counter) == ("short text", None) and calls == []
    text = "word " * 10_000
    cut, note = fit(text, 500, counter)
    assert count_tokens(cut) <= 500 and note and "cut to" in note
    assert max(calls) <= 500 * 6  # never the whole text
    cut, note = fit(text, 500, lambda _: None)
    assert len(cut.encode()) <= 500 and "estimated" in (note or "")
