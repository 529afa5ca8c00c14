"""pipeline.media.exif and the readers under it: a photo's date from every EXIF block and
from XMP, in every container, with the source named; and untrusted files that never raise,
hang or fill memory."""

from __future__ import annotations

import io
import os
import random
import struct
import time
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PIL.TiffImagePlugin import IFDRational

from pipeline import media
from pipeline.media import Metadata, containers, read_metadata, tiff, xmp
from pipeline.media.exif import DATE_SOURCES
from pipeline.templates import compile_template
from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "photos"

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


def exif_jpeg(
    path: Path,
    tags: dict[int, object],
    exif_ifd: dict[int, object] | None = None,
    gps_ifd: dict[int, object] | None = None,
) -> Path:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    if exif_ifd:
        exif.get_ifd(0x8769).update(exif_ifd)
    if gps_ifd:
        exif.get_ifd(0x8825).update(gps_ifd)
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif.tobytes())
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


# -- the real corpus ------------------------------------------------------------------------


def app1_kinds(path: Path) -> list[str]:
    """The APP1 segments before the image data, in file order: what exiftool -v lists."""
    data, at, kinds = path.read_bytes(), 2, []
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        body = data[at + 4 : at + 2 + length]
        if data[at + 1] == 0xE1:
            kinds.append("XMP" if body.startswith(XMP_APP1) else body[:4].decode("latin-1"))
        at += 2 + length
    return kinds


def test_corpus_exif_after_xmp_is_found() -> None:
    path = CORPUS / "xmp" / "no_exif.jpg"
    assert app1_kinds(path) == ["XMP", "Exif"]  # a 26 KB XMP segment, then the EXIF one
    meta = read_metadata(path)
    # Its EXIF (Photoshop's, no DateTimeOriginal) has only DateTime; before, nothing was read.
    assert ("EXIF DateTime", datetime(2014, 9, 22, 10, 56, 35)) in meta.dates
    # Its XMP has the earlier creation date, which ranks above a modification date.
    assert (meta.date, meta.date_source) == (datetime(2013, 9, 23, 10, 9, 46), "XMP xmp:CreateDate")
    assert meta.dates[0] == (meta.date_source, meta.date)
    mtime = os.stat(path).st_mtime
    assert meta.fields(mtime)["date_source"] == "XMP xmp:CreateDate"


def test_corpus_xmp_dates() -> None:
    # An old "xap:" prefix for the XMP namespace; the -07:00 offset is dropped.
    square = read_metadata(CORPUS / "xmp" / "BlueSquare.jpg")
    assert (square.date, square.date_source) == (
        datetime(2005, 9, 7, 15, 7, 40),
        "XMP xmp:CreateDate",
    )
    assert dict(square.dates)["EXIF DateTime"] == datetime(2005, 9, 7, 15, 9, 51)
    # A news photo: IPTC's date created, as a bare date, beats the later edits.
    news = read_metadata(CORPUS / "cameras" / "long_description.jpg")
    assert (news.date, news.date_source) == (datetime(2003, 8, 31), "XMP photoshop:DateCreated")
    # Element form with an offset: the same wall-clock time as the camera's EXIF.
    d70 = dict(read_metadata(CORPUS / "cameras" / "Nikon_D70.jpg").dates)
    assert d70["EXIF DateTimeOriginal"] == datetime(2008, 3, 15, 9, 52, 1)
    assert d70["XMP exif:DateTimeOriginal"] == d70["EXIF DateTimeOriginal"]
    assert d70["XMP xmp:ModifyDate"] == datetime(2008, 3, 15, 15, 18, 33)
    # Microseconds and an offset ("2014-09-21T16:00:56.000000+02:00").
    jolla = dict(read_metadata(CORPUS / "mobile" / "jolla.jpg").dates)
    assert jolla["XMP exif:DateTimeOriginal"] == jolla["EXIF DateTimeOriginal"]


def test_corpus_names_every_source_it_uses() -> None:
    names = {name for name, _ in DATE_SOURCES}
    for path in sorted(CORPUS.glob("*/*.jpg")):
        meta = read_metadata(path)
        assert all(source in names for source, _ in meta.dates), path
        assert [s for s, _ in meta.dates] == sorted(
            (s for s, _ in meta.dates), key=[n for n, _ in DATE_SOURCES].index
        ), path


# -- read_metadata -------------------------------------------------------------------------


def test_gps_north_east() -> None:
    meta = read_metadata(SAMPLES / "DSCN0010.jpg")
    assert meta.lat == pytest.approx(43.467448, abs=1e-6)  # Tuscany
    assert meta.lon == pytest.approx(11.885127, abs=1e-6)
    assert meta.fields()["gps"] == "43.467448,11.885127"
    assert meta.camera == "NIKON COOLPIX P6000"


def test_gps_south_is_negative() -> None:
    meta = read_metadata(SAMPLES / "Kodak_CX7530.jpg")
    assert meta.lat is not None and meta.lon is not None
    assert -1 < meta.lat < 0 and 35 < meta.lon < 37  # just south of the equator, Kenya


def test_gps_corpus_all_plausible() -> None:
    for path in sorted((CORPUS / "gps").glob("*.jpg")):
        meta = read_metadata(path)
        assert meta.lat is not None and 43 < meta.lat < 44, path
        assert meta.lon is not None and 11 < meta.lon < 12, path
    west = read_metadata(CORPUS / "hdr" / "iphone_hdr_NO.jpg")
    assert west.lon is not None and -4 < west.lon < -3  # Madrid: W is negative


def test_date_original_then_datetime() -> None:
    s40 = read_metadata(SAMPLES / "Canon_PowerShot_S40.jpg")
    assert (s40.date, s40.date_source) == (
        datetime(2003, 12, 14, 12, 1, 44),
        "EXIF DateTimeOriginal",
    )
    imported = read_metadata(SAMPLES / "Canon_40D_photoshop_import.jpg")
    assert (imported.date, imported.date_source) == (
        datetime(2008, 7, 31, 10, 5, 49),
        "EXIF DateTime",
    )
    assert imported.camera == imported.make == imported.model == ""


def test_camera_names_are_tidied() -> None:
    s40 = read_metadata(SAMPLES / "Canon_PowerShot_S40.jpg")
    assert (s40.make, s40.model, s40.camera) == ("Canon", "Canon PowerShot S40", s40.model)
    pentax = read_metadata(SAMPLES / "Pentax_K10D.jpg")  # NUL/space padded in the file
    assert (pentax.make, pentax.model, pentax.camera) == (
        "PENTAX Corporation",
        "PENTAX K10D",
        "PENTAX K10D",
    )
    assert read_metadata(SAMPLES / "Kodak_CX7530.jpg").camera == "KODAK CX7530 ZOOM DIGITAL CAMERA"


@pytest.mark.parametrize(
    ("make", "model", "camera"),
    [
        ("Canon", "Canon EOS 40D", "Canon EOS 40D"),
        ("NIKON CORPORATION", "NIKON D70", "NIKON D70"),
        ("OLYMPUS CORPORATION", "C8080WZ", "OLYMPUS C8080WZ"),
        ("OLYMPUS OPTICAL CO.,LTD", "C960Z,D460Z", "OLYMPUS C960Z,D460Z"),
        ("SANYO Electric Co.,Ltd.", "SR6", "SANYO SR6"),
        ("Eastman Kodak Company", "DC210 Zoom", "Eastman Kodak DC210 Zoom"),
        ("Apple", "iPhone 6", "Apple iPhone 6"),
        ("Jolla", "Jolla", "Jolla"),
        ("FUJIFILM", "", "FUJIFILM"),
        ("", "DX-10", "DX-10"),
        ("", "", ""),
    ],
)
def test_camera_rule(make: str, model: str, camera: str) -> None:
    assert media.exif._camera(make, model) == camera


def test_no_metadata_and_mtime_fallback(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"  # samples' no_exif.jpg turned out to have EXIF after its XMP
    Image.new("RGB", (64, 48), "gray").save(path)
    meta = read_metadata(path)
    assert meta == Metadata()
    mtime = os.stat(path).st_mtime
    fields = meta.fields(mtime)
    assert fields["date"] == datetime.fromtimestamp(mtime)
    assert fields["date_source"] == "mtime"
    assert fields["camera"] == fields["make"] == fields["model"] == fields["gps"] == ""


def test_prefer_mtime_and_bad_prefer() -> None:
    meta = read_metadata(SAMPLES / "Canon_PowerShot_S40.jpg")
    assert meta.fields(0.0)["date_source"] == "EXIF DateTimeOriginal"
    forced = meta.fields(86400.0, prefer="mtime")
    assert (forced["date"], forced["date_source"]) == (datetime.fromtimestamp(86400), "mtime")
    assert meta.fields(prefer="mtime")["date_source"] == "EXIF DateTimeOriginal"  # no mtime
    with pytest.raises(ValueError):
        meta.fields(prefer="digitized")


def test_templates_never_crash_on_missing_fields() -> None:
    fields = Metadata().fields()
    assert all(value is not None for value in fields.values())
    template = compile_template("{exif.date:%Y-%m-%d}|{exif.camera}|{exif.lat:.3f}|{exif.gps}")
    assert template.render({"exif": fields}) == "|||"
    full = read_metadata(SAMPLES / "DSCN0010.jpg").fields()
    assert template.render({"exif": full}) == (
        "2008-10-22|NIKON COOLPIX P6000|43.467|43.467448,11.885127"
    )


def test_garbage_exif_values(tmp_path: Path) -> None:
    path = exif_jpeg(
        tmp_path / "odd.jpg",
        {0x0132: "2020:01:02 03:04:05", 0x010F: "ACME\x00\x00  ", 0x0110: "  "},
        exif_ifd={0x9003: "0000:00:00 00:00:00"},
        gps_ifd={
            1: "N",
            2: (IFDRational(43, 1), IFDRational(5, 0), IFDRational(0, 0)),  # x/0 rationals
            3: "E",
            4: (IFDRational(11, 1), IFDRational(0, 1), IFDRational(0, 1)),
        },
    )
    meta = read_metadata(path)
    assert (meta.date, meta.date_source) == (datetime(2020, 1, 2, 3, 4, 5), "EXIF DateTime")
    assert (meta.make, meta.model, meta.camera) == ("ACME", "", "ACME")
    assert meta.lat is None and meta.lon is None


def test_null_island_and_out_of_range_gps(tmp_path: Path) -> None:
    zero = (IFDRational(0, 1),) * 3
    path = exif_jpeg(tmp_path / "nofix.jpg", {}, gps_ifd={1: "N", 2: zero, 3: "E", 4: zero})
    assert read_metadata(path).lat is None
    far = (IFDRational(95, 1), IFDRational(0, 1), IFDRational(0, 1))
    path = exif_jpeg(tmp_path / "far.jpg", {}, gps_ifd={1: "S", 2: far, 3: "W", 4: far})
    assert read_metadata(path).fields()["gps"] == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2008:05:30 15:56:01", datetime(2008, 5, 30, 15, 56, 1)),
        ("2008-05-30T15:56:01", datetime(2008, 5, 30, 15, 56, 1)),
        ("2008:05:30 15:56", datetime(2008, 5, 30, 15, 56)),
        ("2008:05:30", datetime(2008, 5, 30)),
        # XMP: ISO 8601; the wall-clock time is kept, the offset dropped
        ("2019-07-04T18:22:05+02:00", datetime(2019, 7, 4, 18, 22, 5)),
        ("2019-07-04T18:22:05.250-07:00", datetime(2019, 7, 4, 18, 22, 5)),
        ("2019-07-04T18:22Z", datetime(2019, 7, 4, 18, 22)),
        ("2019-07-04", datetime(2019, 7, 4)),
        ("2019-07", None),  # no day: not made up
        ("2019", None),
        ("0000:00:00 00:00:00", None),
        ("0000-00-00T00:00:00", None),
        ("    :  :     :  :  ", None),
        ("2008:13:40 25:00:00", None),
        ("", None),
    ],
)
def test_date_parsing(text: str, expected: datetime | None) -> None:
    assert media.exif._parse_date(text) == expected


def test_metadata_never_raises(tmp_path: Path) -> None:
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(random.Random(3).randbytes(3000))
    png = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(png)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((SAMPLES / "DSCN0010.jpg").read_bytes()[:300])
    for path in (noise, png, cut, tmp_path, tmp_path / "missing.jpg"):
        assert isinstance(read_metadata(path), Metadata)
    assert read_metadata(noise) == read_metadata(tmp_path) == read_metadata(png) == Metadata()


# -- JPEG: every EXIF block, and XMP ------------------------------------------------------


@pytest.mark.parametrize("form", ["attribute", "element"])
@pytest.mark.parametrize(
    "prop", ["exif:DateTimeOriginal", "xmp:CreateDate", "photoshop:DateCreated"]
)
def test_jpeg_xmp_only(tmp_path: Path, prop: str, form: str) -> None:
    data = packet({prop: "2019-07-04T18:22:05+02:00", "dc:format": "image/jpeg"}, form)
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(xmp_app1(data))))
    assert (meta.date, meta.date_source) == (D1, f"XMP {prop}")
    assert meta.dates == ((f"XMP {prop}", D1),)


def test_jpeg_xmp_any_prefix(tmp_path: Path) -> None:
    # What counts is the namespace, not the prefix a file binds to it.
    data = packet({}).replace(
        b"<rdf:Description",
        b'<rdf:Description xmlns:cam="http://ns.adobe.com/exif/1.0/" '
        b'cam:DateTimeOriginal="2019-07-04T18:22:05"',
    )
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(xmp_app1(data))))
    assert (meta.date, meta.date_source) == (D1, "XMP exif:DateTimeOriginal")


def test_jpeg_exif_after_xmp(tmp_path: Path) -> None:
    # A big XMP segment first (past what exifread looked through), then the EXIF one.
    big = packet({"dc:format": "image/jpeg"}, inside="<dc:title>" + "x" * 30_000 + "</dc:title>")
    block = exif_block({0x010F: "ACME", 0x0110: "Cam 1"}, {0x9003: "2019:07:04 18:22:05"})
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(xmp_app1(big), exif_app1(block))))
    assert (meta.date, meta.date_source, meta.camera) == (D1, "EXIF DateTimeOriginal", "ACME Cam 1")


def test_jpeg_every_exif_block(tmp_path: Path) -> None:
    # The first block has the camera, the second the date (and its own camera, not used).
    first = exif_block({0x010F: "ACME", 0x0110: "One"})
    second = exif_block({0x010F: "OTHER", 0x0110: "Two"}, {0x9003: "2019:07:04 18:22:05"})
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(exif_app1(first), exif_app1(second))))
    assert (meta.date, meta.date_source, meta.camera) == (D1, "EXIF DateTimeOriginal", "ACME One")


def test_jpeg_gps_from_a_later_block(tmp_path: Path) -> None:
    position = {1: "N", 2: (IFDRational(43, 1),), 3: "W", 4: (IFDRational(11, 2),)}
    blocks = exif_app1(exif_block({0x010F: "ACME"})) + exif_app1(exif_block(gps_ifd=position))
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(blocks)))
    assert (meta.lat, meta.lon, meta.make) == (43.0, -5.5, "ACME")


def extended_app1s(guid: bytes, data: bytes, piece: int) -> list[bytes]:
    """Extended XMP as JPEG writers split it: GUID, full length, offset, then a piece."""
    head = XMP_EXTENSION + guid
    return [
        segment(0xE1, head + struct.pack(">II", len(data), at) + data[at : at + piece])
        for at in range(0, len(data), piece)
    ]


def test_jpeg_extended_xmp(tmp_path: Path) -> None:
    guid = b"0123456789ABCDEF0123456789ABCDEF"
    main = packet(
        {"xmpNote:HasExtendedXMP": guid.decode(), "xmp:ModifyDate": "2018-02-03T04:05:06"}
    )
    extended = packet({"exif:DateTimeOriginal": "2019-07-04T18:22:05"}, "element")
    pieces = extended_app1s(guid, extended, 300)
    assert len(pieces) > 2
    # Pieces may come in any order; a stray extension with another GUID is not this file's.
    stray = extended_app1s(b"F" * 32, packet({"xmp:CreateDate": "2001-01-01"}), 10_000)
    path = write(tmp_path / "x.jpg", jpeg_bytes(xmp_app1(main), *stray, *reversed(pieces)))
    meta = read_metadata(path)
    assert (meta.date, meta.date_source) == (D1, "XMP exif:DateTimeOriginal")
    assert meta.dates == (("XMP exif:DateTimeOriginal", D1), ("XMP xmp:ModifyDate", D2))
    # Without the main packet naming it, the extension is not read.
    alone = read_metadata(write(tmp_path / "y.jpg", jpeg_bytes(*pieces)))
    assert alone.date is None


# -- other containers ---------------------------------------------------------------------

EXIF_D1 = exif_block({0x010F: "ACME", 0x0110: "Cam 1"}, {0x9003: "2019:07:04 18:22:05"})
XMP_D2 = packet({"xmp:CreateDate": "2018-02-03T04:05:06+01:00"})


def save(path: Path, fmt: str, **params: object) -> Path:
    Image.new("RGB", (64, 48), "gray").save(path, format=fmt, **params)
    return path


def test_heic_exif_and_xmp(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    both = read_metadata(save(tmp_path / "a.heic", "HEIF", exif=EXIF_D1, xmp=XMP_D2))
    assert (both.date, both.date_source, both.camera) == (D1, "EXIF DateTimeOriginal", "ACME Cam 1")
    assert both.dates == (("EXIF DateTimeOriginal", D1), ("XMP xmp:CreateDate", D2))
    only = read_metadata(save(tmp_path / "b.heic", "HEIF", xmp=XMP_D2))
    assert (only.date, only.date_source, only.camera) == (D2, "XMP xmp:CreateDate", "")


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


def test_png_exif_and_itxt_xmp(tmp_path: Path) -> None:
    exif = read_metadata(save(tmp_path / "a.png", "PNG", exif=EXIF_D1))
    assert (exif.date, exif.date_source, exif.make) == (D1, "EXIF DateTimeOriginal", "ACME")
    for compressed in (False, True):
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP_D2.decode(), zip=compressed)
        meta = read_metadata(save(tmp_path / f"{compressed}.png", "PNG", pnginfo=info))
        assert (meta.date, meta.date_source) == (D2, "XMP xmp:CreateDate"), compressed


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


def test_webp_exif_and_xmp(tmp_path: Path) -> None:
    exif = read_metadata(save(tmp_path / "a.webp", "WEBP", exif=EXIF_D1))
    assert (exif.date, exif.date_source, exif.camera) == (D1, "EXIF DateTimeOriginal", "ACME Cam 1")
    only = read_metadata(save(tmp_path / "b.webp", "WEBP", xmp=XMP_D2))
    assert (only.date, only.date_source) == (D2, "XMP xmp:CreateDate")
    # Pillow's writer drops "Exif\0\0"; others keep it.
    prefixed = read_metadata(save(tmp_path / "c.webp", "WEBP", exif=b"Exif\x00\x00" + EXIF_D1))
    assert prefixed.date_source == "EXIF DateTimeOriginal"


def test_jpeg_xl_boxes(tmp_path: Path) -> None:
    data = jxl_bytes(
        box(b"jxlc", b"\xff\x0a" + bytes(5000)),
        box(b"Exif", struct.pack(">I", 0) + EXIF_D1),
        box(b"xml ", XMP_D2),
    )
    meta = read_metadata(write(tmp_path / "a.jxl", data))
    assert meta.dates == (("EXIF DateTimeOriginal", D1), ("XMP xmp:CreateDate", D2))


def test_tiff_tags_and_xmp_tag(tmp_path: Path) -> None:
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    info = ImageFileDirectory_v2()
    info[0x010F] = "ACME"
    info[0x0132] = "2018:02:03 04:05:06"
    info[700] = packet({"exif:DateTimeOriginal": "2019-07-04T18:22:05"})
    info.tagtype[700] = 1  # BYTE, as TIFF writers store XMP
    meta = read_metadata(save(tmp_path / "a.tif", "TIFF", tiffinfo=info))
    assert meta.dates == (("XMP exif:DateTimeOriginal", D1), ("EXIF DateTime", D2))
    assert meta.make == "ACME"


def test_tiff_ifd_after_the_pixels(tmp_path: Path) -> None:
    # TIFF writers may put the IFD at the end: it is read by seeking, not by loading the file.
    pixels = 3_000_000
    date = b"2019:07:04 18:22:05\x00"
    at = 8 + pixels
    ifd = struct.pack("<H", 1) + tiff_entry("<", 0x0132, 2, len(date), at + 18) + bytes(4)
    data = b"II*\x00" + struct.pack("<I", at) + bytes(pixels) + ifd + date
    meta = read_metadata(write(tmp_path / "end.tif", data))
    assert (meta.date, meta.date_source) == (D1, "EXIF DateTime")


# -- precedence -----------------------------------------------------------------------------

# One distinct date per source, best first, and where each goes in a JPEG.
RANKED: list[tuple[str, datetime]] = [
    (name, datetime(2010 + i, 1, 1, 12, 0, 0)) for i, (name, _) in enumerate(DATE_SOURCES)
]


def ranked_jpeg(path: Path, sources: list[tuple[str, datetime]]) -> Path:
    ifd0: dict[int, object] = {}
    exif_ifd: dict[int, object] = {}
    props: dict[str, str] = {}
    for name, date in sources:
        if name.startswith("EXIF "):
            tag = {"DateTimeOriginal": 0x9003, "DateTimeDigitized": 0x9004, "DateTime": 0x0132}
            target = ifd0 if name == "EXIF DateTime" else exif_ifd
            target[tag[name[5:]]] = date.strftime("%Y:%m:%d %H:%M:%S")
        else:
            props[name[4:]] = date.isoformat() + "+05:00"
    segments = [exif_app1(exif_block(ifd0, exif_ifd))] if ifd0 or exif_ifd else []
    segments += [xmp_app1(packet(props, "element"))] if props else []
    return write(path, jpeg_bytes(*segments))


@pytest.mark.parametrize("best", range(len(RANKED)))
def test_precedence(tmp_path: Path, best: int) -> None:
    meta = read_metadata(ranked_jpeg(tmp_path / "x.jpg", RANKED[best:]))
    assert (meta.date_source, meta.date) == RANKED[best]
    assert meta.dates == tuple(RANKED[best:])
    # The file time comes last, and only when asked for or when nothing else is there.
    assert meta.fields(0.0)["date_source"] == RANKED[best][0]
    assert meta.fields(0.0, prefer="mtime")["date_source"] == "mtime"


def test_precedence_does_not_depend_on_file_order(tmp_path: Path) -> None:
    xmp_first = jpeg_bytes(
        xmp_app1(packet({"exif:DateTimeOriginal": "2018-02-03T04:05:06"})),
        exif_app1(exif_block(exif_ifd={0x9003: "2019:07:04 18:22:05"})),
    )
    meta = read_metadata(write(tmp_path / "x.jpg", xmp_first))
    assert (meta.date, meta.date_source) == (D1, "EXIF DateTimeOriginal")


def test_xmp_beats_mtime_and_prefer_mtime_still_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jpg", jpeg_bytes(xmp_app1(XMP_D2)))
    fields = read_metadata(path).fields(86400.0)
    assert (fields["date"], fields["date_source"]) == (D2, "XMP xmp:CreateDate")
    forced = read_metadata(path).fields(86400.0, prefer="mtime")
    assert (forced["date"], forced["date_source"]) == (datetime.fromtimestamp(86400), "mtime")


def test_blank_dates_fall_through(tmp_path: Path) -> None:
    block = exif_block({0x0132: "2018:02:03 04:05:06"}, {0x9003: "0000:00:00 00:00:00"})
    props = packet({"exif:DateTimeOriginal": "0000-00-00T00:00:00", "xmp:CreateDate": "2019"})
    meta = read_metadata(write(tmp_path / "x.jpg", jpeg_bytes(exif_app1(block), xmp_app1(props))))
    assert meta.dates == (("EXIF DateTime", D2),)


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
    meta = read_metadata(write(tmp_path / "bomb.jpg", jpeg_bytes(xmp_app1(bomb))))
    assert meta.date is None
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
        assert read_metadata(write(tmp_path / "x.jpg", data)).date == D1, name


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
    assert read_metadata(write(tmp_path / "x.png", data)).date == D1
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
