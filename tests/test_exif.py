"""pipeline.media.exif and the readers under it: a photo's date from every EXIF block and
from XMP, in every container, with the source named; and untrusted files that never raise,
hang or fill memory."""

from __future__ import annotations

import struct
import time
from datetime import datetime
from pathlib import Path

import pytest

from pipeline import media
from pipeline.media import tiff
from tests.real_servers import SHARED

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "photos"
CORPUS = SHARED / "corpus" / "photos"  # beside the clone, or PIPE_TEST_SHARED
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="needs the shared corpus")

D1 = datetime(2019, 7, 4, 18, 22, 5)
D2 = datetime(2018, 2, 3, 4, 5, 6)


def tiff_entry(order: str, tag: int, kind: int, count: int, value: bytes | int) -> bytes:
    field = value.ljust(4, b"\x00") if isinstance(value, bytes) else struct.pack(order + "I", value)
    return struct.pack(order + "HHI", tag, kind, count) + field


# -- hostile files --------------------------------------------------------------------------


def test_tiff_ifd_loops_end() -> None:
    # IFD0 at 8: its next-IFD link, Exif pointer and GPS pointer all point back to itself.
    order = "<"
    entries = [
        tiff_entry(order, 0x010F, 2, 4, b"ACM\x00"),
        tiff_entry(order, 0x8769, 4, 1, 8),
        tiff_entry(order, 0x8825, 4, 1, 8),
    ]
    block = (
        b"II*\x00" + struct.pack("<IH", 8, len(entries)) + b"".join(entries) + struct.pack("<I", 8)
    )
    start = time.perf_counter()
    tags = tiff.read_tags(tiff.bytes_reader(block))
    assert tags == {"Image Make": "ACM"}
    assert time.perf_counter() - start < 0.1


def test_tiff_lying_counts_and_offsets() -> None:
    order = ">"
    entries = [
        tiff_entry(order, 0x010F, 2, 0xFFFFFFFF, 0xFFFFFFF0),  # 4 GB of make, past the end
        tiff_entry(order, 0x0110, 2, 0x7FFFFFFF, 70),  # a model that runs to the end
        tiff_entry(order, 0x0132, 2, 20, 0x10),  # a date pointing into the header
        tiff_entry(order, 0x8825, 4, 1, 0xFFFFFF00),  # a GPS IFD past the end
        tiff_entry(order, 0x8769, 99, 1, 8),  # an unknown field type
    ]
    head = b"MM\x00*" + struct.pack(">IH", 8, 65535)  # says 65535 entries, has 5
    block = head + b"".join(entries) + b"Model X" + bytes(3)
    tags = tiff.read_tags(tiff.bytes_reader(block))
    assert tags["Image Model"] == "Model X"
    assert "Image Make" not in tags and not any(k.startswith("GPS") for k in tags)
    assert media.exif._parse_date(media.exif._text(tags.get("Image DateTime"))) is None


def test_tiff_huge_rational_count_is_capped() -> None:
    order = "<"
    entries = [tiff_entry(order, 2, 5, 0x20000000, 40)]  # 4 GB of latitude
    gps = struct.pack("<H", 1) + b"".join(entries) + bytes(4) + bytes(range(200))
    block = b"II*\x00" + struct.pack("<IH", 8, 1) + tiff_entry(order, 0x8825, 4, 1, 22) + gps
    tags = tiff.read_tags(tiff.bytes_reader(block))
    values = tags["GPS GPSLatitude"]
    assert isinstance(values, tuple) and 0 < len(values) <= 4096 // 8
