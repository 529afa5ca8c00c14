"""pipeline.media.exif and the readers under it: a photo's date from every EXIF block and
from XMP, in every container, with the source named; and untrusted files that never raise,
hang or fill memory."""

from __future__ import annotations

import random
import struct
import time
from datetime import datetime
from pathlib import Path

import pytest

from pipeline import media
from pipeline.media import tiff, xmp
from tests.real_servers import SHARED

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "photos"
CORPUS = SHARED / "corpus" / "photos"  # beside the clone, or PIPE_TEST_SHARED
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="needs the shared corpus")

D1 = datetime(2019, 7, 4, 18, 22, 5)
D2 = datetime(2018, 2, 3, 4, 5, 6)

# -- making files ---------------------------------------------------------------------------

NAMESPACES = {
    "exif": "http://ns.adobe.com/exif/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmpNote": "http://ns.adobe.com/xmp/note/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"


def packet(props: dict[str, str], form: str = "attribute", inside: str = "") -> bytes:
    """An XMP packet as Adobe's toolkit writes it, with the properties as attributes of the
    description or as elements in it; `inside` is more markup for the description."""
    names = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    if form == "attribute":
        values = " ".join(f'{key}="{value}"' for key, value in props.items())
        description = f'<rdf:Description rdf:about="" {names} {values}>{inside}</rdf:Description>'
    else:
        values = "".join(f"<{key}>{value}</{key}>" for key, value in props.items())
        description = f'<rdf:Description rdf:about="" {names}>{values}{inside}</rdf:Description>'
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{description}</rdf:RDF></x:xmpmeta>\n" + " " * 200 + '<?xpacket end="w"?>'
    ).encode()


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


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"""


def test_xml_bomb_and_external_entity_are_refused(tmp_path: Path) -> None:
    dated = packet({"xmp:CreateDate": "2018-02-03T04:05:06"}, inside="<dc:title>&lol9;</dc:title>")
    bomb = BOMB + dated[dated.index(b"<x:xmpmeta") :]
    start = time.perf_counter()
    assert xmp.read_properties(bomb) == {}
    assert time.perf_counter() - start < 1
    external = b'<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>' + packet(
        {"xmp:CreateDate": "2018-02-03"}, "element", inside="<dc:title>&ext;</dc:title>"
    )
    assert xmp.read_properties(external) == {}
    # The same packet without the DTD is read: what was refused was the DTD.
    assert xmp.read_properties(dated.replace(b"&lol9;", b"")) == {
        "xmp:CreateDate": "2018-02-03T04:05:06"
    }


def test_xmp_not_utf8_truncated_nested_or_garbage() -> None:
    # Latin-1 text before the date, in a packet that declares no encoding (so UTF-8).
    props = {"dc:title": "Caf\u00e9", "xmp:CreateDate": "2018-02-03"}
    latin = packet(props, "element").replace("Caf\u00e9".encode(), b"Caf\xe9")
    assert xmp.read_properties(latin) == {"xmp:CreateDate": "2018-02-03"}
    whole = packet({"xmp:CreateDate": "2018-02-03"}, "element", inside="<dc:title>x</dc:title>")
    assert xmp.read_properties(whole[: whole.index(b"<dc:title>") + 5]) == {
        "xmp:CreateDate": "2018-02-03"
    }
    deep = packet({"xmp:ModifyDate": "2018-02-03"}, inside="<dc:a>" * 10_000 + "</dc:a>" * 10_000)
    assert xmp.read_properties(deep) == {"xmp:ModifyDate": "2018-02-03"}
    for junk in (random.Random(1).randbytes(5000), b"", b"<", b"\xff\xfe\x00<"):
        assert xmp.read_properties(junk) == {}
    # A date nested in some other structure is not the photo's.
    nested = packet({}, inside="<dc:x><rdf:Description xmp:CreateDate='2018-02-03'/></dc:x>")
    assert xmp.read_properties(nested) == {}
