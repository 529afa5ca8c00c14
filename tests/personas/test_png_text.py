"""The PNG text reader takes untrusted bytes: every chunk kind a card is written in reads
back, and anything else is one PngTextError (never another exception, never unbounded
memory)."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest

from pipeline.personas import png_text
from pipeline.personas.cards import read_card
from pipeline.personas.persona import BadCard
from pipeline.personas.png_text import PngTextError, text_chunks
from tests.personas.make import b64, png_bytes, v2, v3, with_good_crcs


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_every_text_chunk_kind_reads_back_and_the_first_keyword_wins() -> None:
    data = png_bytes(
        ("tEXt", "chara", "first"),
        ("zTXt", "zipped", "z" * 5000),
        ("iTXt", "ccv3", "ünïcode ✓"),
        ("tEXt", "chara", "second"),
    )
    assert text_chunks(data) == {"chara": "first", "zipped": "z" * 5000, "ccv3": "ünïcode ✓"}


def test_uncompressed_itxt_with_language_fields() -> None:
    body = b"ccv3\0\0\0en\0Card\0" + "naïve".encode()
    data = png_bytes()  # a valid PNG to splice the chunk into
    at = data.rindex(b"IEND") - 4
    data = data[:at] + chunk(b"iTXt", body) + data[at:]
    assert text_chunks(data) == {"ccv3": "naïve"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a PNG"),
        (b"GIF89a" + b"\0" * 40, "not a PNG"),
        (png_text.SIGNATURE, "no IEND"),
        (png_text.SIGNATURE + struct.pack(">I", 0xFFFFFFF0) + b"tEXt", "truncated"),
        (png_text.SIGNATURE + chunk(b"tEXt", b"no keyword separator"), "no keyword"),
        (png_text.SIGNATURE + chunk(b"tEXt", b"\0empty keyword"), "no keyword"),
        (png_text.SIGNATURE + chunk(b"zTXt", b"k\0\x05junk"), "unknown compression"),
        (png_text.SIGNATURE + chunk(b"zTXt", b"k\0\0not zlib"), "broken compressed"),
        (png_text.SIGNATURE + chunk(b"iTXt", b"k\0\x02\0\0\0x"), "bad compression"),
        (png_text.SIGNATURE + chunk(b"iTXt", b"k\0\0\0en"), "missing language"),
        (png_text.SIGNATURE + chunk(b"iTXt", b"k\0\0\0\0\0\xff\xfe"), "not UTF-8"),
        (png_text.SIGNATURE + chunk(b"1234", b""), "not letters"),
    ],
)
def test_garbage_is_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(PngTextError, match=words):
        text_chunks(data)


def test_a_bad_crc_is_an_error_as_in_sillytavern() -> None:
    data = bytearray(png_bytes(("tEXt", "chara", "abc")))
    data[data.index(b"chara") + 6] ^= 1
    with pytest.raises(PngTextError, match="bad CRC of the tEXt chunk"):
        text_chunks(bytes(data))


def test_a_zip_bomb_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few KB that inflate to 64 MB: refused after inflating at most the budget."""
    monkeypatch.setattr(png_text, "MAX_TEXT", 1 << 20)
    bomb = zlib.compress(b"\0" * (64 << 20), 9)
    data = png_text.SIGNATURE + chunk(b"zTXt", b"chara\0\0" + bomb) + chunk(b"IEND", b"")
    assert len(data) < 100_000
    with pytest.raises(PngTextError, match="over 1 MB inflated"):
        text_chunks(data)


def test_many_text_chunks_together_stop_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png_text, "MAX_TEXT", 1000)
    many = b"".join(chunk(b"tEXt", b"k%d\0" % i + b"x" * 300) for i in range(5))
    with pytest.raises(PngTextError, match="text chunks over"):
        text_chunks(png_text.SIGNATURE + many + chunk(b"IEND", b""))


def test_chunk_count_and_file_size_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png_text, "MAX_CHUNKS", 50)
    many = chunk(b"tIME", b"1234567") * 60
    with pytest.raises(PngTextError, match="more than 50 chunks"):
        text_chunks(png_text.SIGNATURE + many + chunk(b"IEND", b""))
    monkeypatch.setattr(png_text, "MAX_FILE", 100)
    with pytest.raises(PngTextError, match="over"):
        text_chunks(png_text.SIGNATURE + b"\0" * 200)


def mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """Deterministic damage of the kinds a fuzzer finds first: flipped bytes, cut files,
    lengths rewritten, bytes inserted and chunks duplicated."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            how = rng.randrange(5)
            at = rng.randrange(len(mutated))
            if how == 0:
                mutated[at] ^= 1 << rng.randrange(8)
            elif how == 1:
                del mutated[at:]
            elif how == 2 and at + 4 <= len(mutated):
                mutated[at : at + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 2**32 - 1]))
            elif how == 3:
                mutated[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            else:
                mutated[at:at] = mutated[at : at + rng.randint(1, 64)]
            if not mutated:
                break
        out.append(bytes(mutated))
    return out


def test_thousands_of_mutations_of_a_real_card_raise_only_the_modules_errors(
    tmp_path: Path,
) -> None:
    data = png_bytes(
        ("tEXt", "chara", b64(v2(name="Mutant"))),
        ("iTXt", "ccv3", b64(v3(name="Mutant"))),
        ("zTXt", "comment", "a zipped comment " * 20),
    )
    card = tmp_path / "card.png"
    read_ok = parsed_ok = 0
    for damaged in mutations(data, 2000, seed=17):
        # With the CRCs made right too, or nearly all damage stops at the CRC check.
        for mutated in (damaged, with_good_crcs(damaged)):
            try:
                text_chunks(mutated)
                parsed_ok += 1
            except PngTextError as e:
                assert "\n" not in str(e)
            card.write_bytes(mutated)
            try:
                read_card(card)
                read_ok += 1
            except BadCard as e:
                assert str(e).startswith(str(card)) and "\n" not in str(e)
    assert 100 < parsed_ok < 4000  # damage in the pixels passes; in a text chunk, not always
    assert read_ok > 100
