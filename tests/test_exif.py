"""pipeline.media.exif and the readers under it: a photo's date from every EXIF block and
from XMP, in every container, with the source named; and untrusted files that never raise,
hang or fill memory."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipeline import media
from pipeline.media import containers, tiff, xmp
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


def exif_block(
    tags: dict[int, object] | None = None,
    exif_ifd: dict[int, object] | None = None,
    gps_ifd: dict[int, object] | None = None,
) -> bytes:
    """A TIFF block (no "Exif\\0\\0" prefix) as cameras write it, made by Pillow."""
    exif = Image.Exif()
    for tag, value in (tags or {}).items():
        exif[tag] = value
    if exif_ifd:
        exif.get_ifd(0x8769).update(exif_ifd)
    if gps_ifd:
        exif.get_ifd(0x8825).update(gps_ifd)
    data = exif.tobytes()
    return data[6:] if data.startswith(b"Exif\x00\x00") else data


def segment(code: int, body: bytes) -> bytes:
    return bytes([0xFF, code]) + (len(body) + 2).to_bytes(2, "big") + body


def exif_app1(block: bytes) -> bytes:
    return segment(0xE1, b"Exif\x00\x00" + block)


def xmp_app1(data: bytes) -> bytes:
    return segment(0xE1, XMP_APP1 + data)


def jpeg_bytes(*segments: bytes) -> bytes:
    """A small real JPEG with the given segments right after its SOI."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), "gray").save(buf, "JPEG")
    data = buf.getvalue()
    return data[:2] + b"".join(segments) + data[2:]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG chunk, CRC and all."""
    crc = zlib.crc32(kind + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + kind + body + crc


def box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def full_box(kind: bytes, version: int, body: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + body)


def heif_bytes(items: list[tuple[bytes, bytes]], in_idat: bool = False) -> bytes:
    """A minimal HEIF: ftyp, a meta box with one infe per (item type or MIME type, data) and
    an iloc for them, the data in an mdat (or, with `in_idat`, in the meta box's idat)."""
    infes = b""
    for number, (kind, _) in enumerate(items, 1):
        item_type, content = (kind, b"") if kind == b"Exif" else (b"mime", kind + b"\x00")
        infes += full_box(
            b"infe", 2, struct.pack(">HH4s", number, 0, item_type) + b"\x00" + content
        )
    iinf = full_box(b"iinf", 0, struct.pack(">H", len(items)) + infes)

    def iloc(offsets: list[int]) -> bytes:
        version = 1 if in_idat else 0
        table = struct.pack(">BBH", 0x44, 0, len(items))
        for number, (offset, (_, data)) in enumerate(zip(offsets, items, strict=True), 1):
            method = struct.pack(">H", 1) if in_idat else b""
            table += struct.pack(">H", number) + method + struct.pack(">HH", 0, 1)
            table += struct.pack(">II", offset, len(data))
        return full_box(b"iloc", version, table)

    ftyp = box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
    datas = [data for _, data in items]
    starts = [sum(len(d) for d in datas[:i]) for i in range(len(datas))]
    if in_idat:
        meta = full_box(b"meta", 0, iinf + iloc(starts) + box(b"idat", b"".join(datas)))
        return ftyp + meta + box(b"mdat", b"pixels")
    size = len(full_box(b"meta", 0, iinf + iloc(starts)))
    first = len(ftyp) + size + 8
    meta = full_box(b"meta", 0, iinf + iloc([first + s for s in starts]))
    return ftyp + meta + box(b"mdat", b"".join(datas))


def heif_exif(block: bytes) -> bytes:
    """An Exif item: the offset to the TIFF header, an "Exif\\0\\0" header, the block."""
    return struct.pack(">I", 6) + b"Exif\x00\x00" + block


def jxl_bytes(*boxes: bytes) -> bytes:
    signature = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
    return signature + box(b"ftyp", b"jxl \x00\x00\x00\x00jxl ") + b"".join(boxes)


def tiff_entry(order: str, tag: int, kind: int, count: int, value: bytes | int) -> bytes:
    field = value.ljust(4, b"\x00") if isinstance(value, bytes) else struct.pack(order + "I", value)
    return struct.pack(order + "HHI", tag, kind, count) + field


def scan(data: bytes) -> containers.Found:
    return containers.scan(io.BytesIO(data))


def dates(found: containers.Found) -> dict[str, tiff.Value]:
    """The EXIF date tags of every block found, merged first-wins."""
    merged: dict[str, tiff.Value] = {}
    for read in found.exif:
        for key, value in tiff.read_tags(read).items():
            merged.setdefault(key, value)
    return merged


class CountingFile(io.BytesIO):
    """Counts the bytes handed out, to show what a reader leaves unread."""

    handed = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.handed += len(data)
        return data


# -- other containers ---------------------------------------------------------------------

EXIF_D1 = exif_block({0x010F: "ACME", 0x0110: "Cam 1"}, {0x9003: "2019:07:04 18:22:05"})
XMP_D2 = packet({"xmp:CreateDate": "2018-02-03T04:05:06+01:00"})


def save(path: Path, fmt: str, **params: object) -> Path:
    Image.new("RGB", (64, 48), "gray").save(path, format=fmt, **params)
    return path


def test_heif_items_in_mdat_or_idat() -> None:
    for in_idat in (False, True):
        data = heif_bytes(
            [(b"application/rdf+xml", XMP_D2), (b"Exif", heif_exif(EXIF_D1))], in_idat
        )
        found = scan(data)
        assert dates(found)["EXIF DateTimeOriginal"] == "2019:07:04 18:22:05", in_idat
        assert [xmp.read_properties(p) for p in found.xmp] == [
            {"xmp:CreateDate": "2018-02-03T04:05:06+01:00"}
        ]


def test_heif_exif_offset_wrong_or_zero() -> None:
    # Writers disagree on what the offset counts; the TIFF header is found anyway.
    for item in (struct.pack(">I", 0) + b"Exif\x00\x00" + EXIF_D1, struct.pack(">I", 0) + EXIF_D1):
        found = scan(heif_bytes([(b"Exif", item)]))
        assert dates(found)["Image Make"] == "ACME"


def png_bytes(*extra: bytes, pixels: int = 0, after: bytes = b"") -> bytes:
    """A PNG with `extra` chunks before the image data and `after` chunks after it; `pixels`
    pads the image data with an IDAT chunk that is never decoded here."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "gray").save(buf, "PNG")
    data = buf.getvalue()
    idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    filler = chunk(b"IDAT", bytes(pixels)) if pixels else b""
    return data[:idat] + b"".join(extra) + data[idat:iend] + filler + after + data[iend:]


def test_png_exif_after_the_image_data_is_found_without_reading_it() -> None:
    data = png_bytes(pixels=5_000_000, after=chunk(b"eXIf", EXIF_D1))
    f = CountingFile(data)
    found = containers.scan(f)
    assert dates(found)["EXIF DateTimeOriginal"] == "2019:07:04 18:22:05"
    assert f.handed < 10_000  # the 5 MB of image data was seeked over
    # With both before the image data, reading stops there.
    itxt = chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP_D2)
    f = CountingFile(png_bytes(chunk(b"eXIf", EXIF_D1), itxt, after=chunk(b"eXIf", b"MM\x00*")))
    found = containers.scan(f)
    assert len(found.exif) == 1 and len(found.xmp) == 1
    assert f.handed < 2000


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


def test_jpeg_lying_segments(tmp_path: Path) -> None:
    good = exif_app1(EXIF_D1)
    cases = {
        "runs past the end": b"\xff\xd8" + good + b"\xff\xe1\xff\xff" + b"Exif\x00\x00MM",
        "length below 2": b"\xff\xd8" + good + b"\xff\xe1\x00\x01" + bytes(100),
        "garbage between segments": b"\xff\xd8" + good + b"\x00\x00junk" + exif_app1(b"MM"),
        "fill bytes": b"\xff\xd8" + b"\xff" * 10 + good,
        "endless fill": b"\xff\xd8" + good + b"\xff" * 100_000,
        "exif prefix only": b"\xff\xd8" + segment(0xE1, b"Exif\x00") + good,
    }
    for name, data in cases.items():
        found = scan(data)
        assert dates(found)["EXIF DateTimeOriginal"] == "2019:07:04 18:22:05", name


def test_jpeg_many_segments_and_image_data_unread() -> None:
    comments = segment(0xFE, b"hi") * 50_000
    start = time.perf_counter()
    found = scan(b"\xff\xd8" + comments + exif_app1(EXIF_D1))
    assert found.exif == []  # gave up after a bounded number of segments
    assert time.perf_counter() - start < 2
    f = CountingFile(jpeg_bytes(exif_app1(EXIF_D1)) + bytes(5_000_000))
    assert len(containers.scan(f).exif) == 1
    assert f.handed < 10_000
    # 200 full-size XMP segments (12 MB): reading stops at the per-file budget.
    f = CountingFile(b"\xff\xd8" + xmp_app1(bytes(65_000)) * 200)
    found = containers.scan(f)
    assert 100 < len(found.xmp) < 200
    assert f.handed < (8 << 20) + 4096  # the budget, and the segment headers


def test_png_and_webp_lying_chunks(tmp_path: Path) -> None:
    huge = b"\xff\xff\xff\xf0eXIf" + EXIF_D1  # says 4 GB, holds a block
    data = png_bytes(huge)
    assert len(dates(scan(data))) > 0  # the block is read, only as far as the file goes
    data = png_bytes(pixels=1000)[:-30]  # cut in its image data
    assert scan(data).exif == []
    # A zip bomb in a compressed iTXt: inflated only up to the cap.
    squeeze, bomb = zlib.compressobj(9), b""
    for _ in range(20):
        bomb += squeeze.compress(bytes(1 << 20))
    bomb += squeeze.flush()
    itxt = chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + bomb)
    found = scan(png_bytes(itxt))
    assert len(found.xmp) == 1 and len(found.xmp[0]) == xmp.MAX_PACKET
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8X" + struct.pack("<I", 0xFFFFFFF0) + bytes(10)
    assert scan(webp).exif == []
    webp = b"RIFF\x00\x00\x00\x00WEBP" + b"EXIF" + struct.pack("<I", 0xFFFFFFF0) + EXIF_D1
    assert dates(scan(webp))["Image Make"] == "ACME"


def test_heif_lying_boxes() -> None:
    good = heif_bytes([(b"Exif", heif_exif(EXIF_D1))])
    meta_at = good.index(b"meta") - 4
    cases = {
        "meta says 4 GB": good[:meta_at] + b"\xff\xff\xff\xff" + good[meta_at + 4 :],
        "meta size 0 (to the end)": good[:meta_at] + bytes(4) + good[meta_at + 4 :],
        "cut in the meta": good[: meta_at + 40],
        "cut in the item": good[:-20],
        "a 64-bit size too small": b"\x00\x00\x00\x01ftyp" + bytes(8) + good[16:],
    }
    for name, data in cases.items():
        found = scan(data)  # must not raise
        assert isinstance(found, containers.Found), name
    iloc_at = good.index(b"iloc") - 4
    extent = iloc_at + 8 + 4 + 2 + 2 + 2 + 2 + 2  # box, version, sizes, count, id, ref, extents
    far = good[:extent] + struct.pack(">II", 0xFFFFFF00, 0xFFFFFFFF) + good[extent + 8 :]
    assert scan(far).exif == []
    # 64-bit offsets: past anything a file can seek to (the boxes grow by 8 bytes to hold them).
    wide = bytearray(good[:extent] + b"\xff" * 16 + good[extent + 8 :])
    wide[iloc_at + 12] = 0x88
    for at in (meta_at, iloc_at):
        wide[at : at + 4] = (int.from_bytes(wide[at : at + 4], "big") + 8).to_bytes(4, "big")
    assert scan(bytes(wide)).exif == []
    # 0-byte offsets and lengths make extents cost no bytes: their number is still bounded
    # (unbounded, these 2000 items of 5000 extents each take seconds and hundreds of MB).
    iinf_at = good.index(b"iinf") - 4
    iinf = good[iinf_at : iinf_at + int.from_bytes(good[iinf_at : iinf_at + 4], "big")]
    items = struct.pack(">BBH", 0, 0, 2000) + struct.pack(">HHH", 1, 0, 5000) * 2000
    meta = full_box(b"meta", 0, iinf + full_box(b"iloc", 0, items))
    start = time.perf_counter()
    assert scan(good[:meta_at] + meta).exif == []
    assert time.perf_counter() - start < 1


def mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(mutated))
            mutated[at] = rng.choice((0, 0xFF, rng.randrange(256)))
        if rng.random() < 0.3:
            del mutated[rng.randrange(len(mutated)) :]
        out.append(bytes(mutated))
    return out


def test_fuzzed_files_never_raise_or_hang(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_D2.decode(), zip=True)
    seeds = {
        "jpeg": jpeg_bytes(xmp_app1(XMP_D2), exif_app1(EXIF_D1)),
        "png": save(tmp_path / "a.png", "PNG", exif=EXIF_D1, pnginfo=info).read_bytes(),
        "webp": save(tmp_path / "a.webp", "WEBP", exif=EXIF_D1, xmp=XMP_D2).read_bytes(),
        "heif": heif_bytes([(b"Exif", heif_exif(EXIF_D1)), (b"application/rdf+xml", XMP_D2)]),
        "jxl": jxl_bytes(box(b"Exif", bytes(4) + EXIF_D1), box(b"xml ", XMP_D2)),
        "tiff": EXIF_D1,
    }
    for index, (name, seed) in enumerate(seeds.items()):
        assert dates(scan(seed)), name  # the unmutated file has its EXIF
        for number, data in enumerate(mutations(seed, index, 150)):
            start = time.perf_counter()
            found = scan(data)  # the readers themselves, not read_metadata's safety net
            for read in found.exif:
                tiff.read_tags(read)
            for data_packet in found.xmp:
                xmp.read_properties(data_packet)
            assert time.perf_counter() - start < 1, (name, number)
