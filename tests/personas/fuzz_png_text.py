"""An atheris harness for the PNG text reader and the card parser over it: any bytes give
text chunks or PngTextError, and a card file gives a Card or BadCard, nothing else.

    pip install atheris
    PYTHONPATH=. python tests/personas/fuzz_png_text.py -max_total_time=300 -rss_limit_mb=512

Not collected by pytest (no test_ prefix); test_png_text.py runs deterministic mutations
of a real card on every test run."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pipeline.personas.cards import parse_card, read_card
    from pipeline.personas.persona import BadCard
    from pipeline.personas.png_text import PngTextError, text_chunks

from tests.personas.make import with_good_crcs

CARD = Path(tempfile.mkdtemp(prefix="fuzz-card-")) / "card.png"


def one(data: bytes) -> None:
    for candidate in (data, with_good_crcs(data)):
        try:
            text_chunks(candidate)
        except PngTextError as e:
            assert "\n" not in str(e), e
    CARD.write_bytes(data)
    try:
        read_card(CARD)
    except BadCard as e:
        assert "\n" not in str(e), e
    try:
        parse_card(data.decode("utf-8", "replace"), "fuzz.json")
    except BadCard as e:
        assert "\n" not in str(e), e


def seeds(folder: Path) -> None:
    """A corpus to start from: real cards in each chunk kind."""
    from tests.personas.make import b64, png_bytes, v2, v3

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "v2.png").write_bytes(png_bytes(("tEXt", "chara", b64(v2()))))
    (folder / "v3.png").write_bytes(png_bytes(("iTXt", "ccv3", b64(v3()))))
    (folder / "z.png").write_bytes(png_bytes(("zTXt", "chara", b64(v2()))))


if __name__ == "__main__":
    corpus = Path(tempfile.gettempdir()) / "pipe-fuzz-png-text"
    seeds(corpus)
    atheris.Setup([*sys.argv, str(corpus)], one)
    atheris.Fuzz()
