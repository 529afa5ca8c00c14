"""pipeline.media.isobmff: boxes with every kind of size, the HEIF item tables in all their
versions and field sizes, items read from the file or from idat; damage that raises
`Damaged` and nothing else; and what `containers` and `heif` get from it on lying files."""

from __future__ import annotations

import contextlib
import io
import random
import struct
import time
from pathlib import Path

import pytest

from pipeline.media import ImageError, containers, heif, isobmff, prepare_image
from pipeline.media.isobmff import Box, Damaged, ItemInfo, Location


def box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def large_box(kind: bytes, body: bytes) -> bytes:
    """The same box with a 64-bit size."""
    return (1).to_bytes(4, "big") + kind + (16 + len(body)).to_bytes(8, "big") + body


def full_box(kind: bytes, version: int, body: bytes, flags: int = 0) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


class Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.handed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.handed += len(data)
        return data


def first(data: bytes) -> Box:
    """The first box of `data`, to hand to a table reader."""
    return next(isobmff.boxes(data))


def iloc(
    version: int,
    sizes: tuple[int, int, int, int],  # offset, length, base offset, extent index
    entries: list[tuple[int, int, int, list[tuple[int, int, int]]]],  # id, method, base, extents
) -> bytes:
    """An iloc box, written field by field as ISO/IEC 14496-12 lays it out."""
    offset_size, length_size, base_size, index_size = sizes
    wide = 4 if version == 2 else 2
    body = bytes([offset_size << 4 | length_size, base_size << 4 | index_size])
    body += len(entries).to_bytes(wide, "big")
    for item, method, base, extents in entries:
        body += item.to_bytes(wide, "big")
        if version:
            body += method.to_bytes(2, "big")
        body += bytes(2) + base.to_bytes(base_size, "big") + len(extents).to_bytes(2, "big")
        for index, offset, length in extents:
            if version and index_size:
                body += index.to_bytes(index_size, "big")
            body += offset.to_bytes(offset_size, "big") + length.to_bytes(length_size, "big")
    return full_box(b"iloc", version, body)


def infe(version: int, item: int, kind: bytes, tail: bytes = b"\x00") -> bytes:
    width = 2 if version == 2 else 4
    return full_box(b"infe", version, item.to_bytes(width, "big") + bytes(2) + kind + tail)


# -- boxes ----------------------------------------------------------------------------------


def test_box_sizes_32_64_bit_and_to_the_end() -> None:
    data = box(b"ftyp", b"heic") + large_box(b"mdat", b"pixels") + bytes(4) + b"free" + b"tail"
    assert list(isobmff.boxes(data)) == [
        Box(b"ftyp", 0, 8, 12),
        Box(b"mdat", 12, 28, 34),  # the body starts after the 64-bit size
        Box(b"free", 34, 42, 46),  # size 0: to the end of the parent
    ]
    # Within a parent: size 0 stops at the parent's end, not at the end of the data.
    assert list(isobmff.boxes(data, 34, 42)) == [Box(b"free", 34, 42, 42)]
    # Fewer than 8 bytes left over are no box.
    assert [b.kind for b in isobmff.boxes(box(b"ftyp", b"") + b"\x00\x00\x00")] == [b"ftyp"]


@pytest.mark.parametrize(
    "data",
    [
        box(b"ftyp", b"heic")[:-1],  # runs past its parent
        (4).to_bytes(4, "big") + b"ftyp",  # smaller than its own header
        (1).to_bytes(4, "big") + b"ftyp" + (8).to_bytes(8, "big"),  # 64-bit, under 16
        (1).to_bytes(4, "big") + b"ftyp" + b"\x00\x00",  # a 64-bit size cut short
        (1).to_bytes(4, "big") + b"mdat" + (1 << 63).to_bytes(8, "big") + bytes(8),
    ],
)
def test_lying_box_sizes_raise_damaged_after_the_good_boxes(data: bytes) -> None:
    good = box(b"free", b"ok")
    walked = []
    with pytest.raises(Damaged, match="runs past its parent"):
        for found in isobmff.boxes(good + data):
            walked.append(found.kind)
    assert walked == [b"free"]
    assert [b.kind for b in isobmff.until_damaged(isobmff.boxes(good + data))] == [b"free"]


def test_boxes_are_counted() -> None:
    data = box(b"free", b"") * (isobmff.MAX_BOXES + 1)
    assert len(list(isobmff.until_damaged(isobmff.boxes(data)))) == isobmff.MAX_BOXES
    with pytest.raises(Damaged, match="boxes"):
        list(isobmff.boxes(data))
    assert len(list(isobmff.boxes(data[8:]))) == isobmff.MAX_BOXES  # just as many is fine


def test_file_boxes_read_headers_only_and_leave_the_end_to_the_caller() -> None:
    mdat = large_box(b"mdat", bytes(1000))
    data = box(b"ftyp", b"heic") + mdat + box(b"meta", bytes(50))
    f = Counting(data + box(b"free", bytes(100))[:30])  # the last box is cut short
    found = list(isobmff.file_boxes(f, len(f.getvalue())))
    assert f.handed == 8 * 4 + 8  # the headers, and the 64-bit size
    assert [(b.kind, b.body - b.offset) for b in found] == [
        (b"ftyp", 8),
        (b"mdat", 16),
        (b"meta", 8),
        (b"free", 8),
    ]
    assert found[-1].end > len(f.getvalue())  # said, not checked: the caller decides
    assert isobmff.read_body(f, found[2], 20) == bytes(20)  # a capped body
    assert isobmff.read_body(f, found[-1], 1000) == bytes(22)  # as far as the file goes
    bad = data + (3).to_bytes(4, "big") + b"free"
    with pytest.raises(Damaged, match="bad size for box b'free'"):
        list(isobmff.file_boxes(io.BytesIO(bad), len(bad)))


def test_full_box_version_and_flags() -> None:
    data = full_box(b"ipma", 1, b"rest", flags=0x010203)
    assert isobmff.full_box(data, first(data)) == (1, 0x010203, 12)
    short = box(b"pitm", b"\x00\x00")
    with pytest.raises(Damaged, match="pitm runs past its end"):
        isobmff.full_box(short, first(short))


# -- item tables ----------------------------------------------------------------------------


def test_primary_item_16_and_32_bit() -> None:
    for version, item in ((0, 0x1234), (1, 0x12345678)):
        pitm = full_box(b"pitm", version, item.to_bytes(4 if version else 2, "big"))
        assert isobmff.primary_item(pitm, first(pitm)) == item
    pitm = full_box(b"pitm", 1, b"\x00\x01")  # a 32-bit ID in 2 bytes
    with pytest.raises(Damaged):
        isobmff.primary_item(pitm, first(pitm))


def test_items_of_every_version() -> None:
    entries = [
        infe(2, 1, b"hvc1"),
        infe(3, 0x10002, b"Exif"),
        infe(2, 3, b"mime", b"XMP\x00application/rdf+xml\x00"),
        full_box(b"infe", 1, bytes(12)),  # version 1: no item type
        full_box(b"infe", 2, struct.pack(">HH2s", 4, 0, b"gr")),  # too short for its type
        box(b"free", b""),
        infe(3, 5, b"mime", b"\x00"),  # no content type at all
    ]
    for version in (0, 1):  # a 16- or 32-bit entry count
        count = len(entries).to_bytes(4 if version else 2, "big")
        iinf = full_box(b"iinf", version, count + b"".join(entries))
        assert list(isobmff.items(iinf, first(iinf))) == [
            ItemInfo(1, b"hvc1", b""),
            ItemInfo(0x10002, b"Exif", b""),
            ItemInfo(3, b"mime", b"application/rdf+xml"),
            ItemInfo(5, b"mime", b""),
        ]
    cut = full_box(b"iinf", 0, b"\x00\x02" + entries[0] + entries[1][:-1])
    assert list(isobmff.until_damaged(isobmff.items(cut, first(cut)))) == [
        ItemInfo(1, b"hvc1", b"")
    ]


@pytest.mark.parametrize(
    ("version", "sizes"),
    [
        (0, (4, 4, 0, 0)),
        (0, (8, 8, 8, 0)),
        (1, (4, 4, 4, 0)),
        (1, (8, 4, 0, 4)),  # extent indexes: read and passed over
        (2, (4, 8, 8, 8)),
        (2, (0, 4, 4, 0)),  # no offsets: the base offset alone
    ],
)
def test_locations_of_every_version_and_field_size(
    version: int, sizes: tuple[int, int, int, int]
) -> None:
    offset_size, length_size, base_size, _ = sizes
    top = (1 << 8 * offset_size) - 1 if offset_size else 0  # the largest offset that fits
    base = 1000 if base_size else 0
    method = 1 if version else 0  # construction method 1 (idat) can only be said from v1
    entries = [
        (7, method, base, [(1, 10 if offset_size else 0, 20), (2, top, 5)]),
        (0x9ABC if version < 2 else 0x12345678, 0, base, []),
        (3, method, base, [(3, 0, (1 << 8 * length_size) - 1)]),
    ]
    data = iloc(version, sizes, entries)
    found = list(isobmff.locations(data, first(data)))
    assert found == [
        Location(item, method, tuple((base + offset, n) for _, offset, n in extents))
        for item, method, base, extents in entries
    ]
    assert found[0].size == 25 and found[1].size == 0


def test_locations_that_do_not_add_up() -> None:
    entries = [(1, 0, 0, [(0, 100, 10)]), (2, 0, 0, [(0, 200, 20)])]
    good = iloc(1, (4, 4, 0, 0), entries)
    cut = full_box(b"iloc", 1, good[12:-3])  # the last extent cut short
    found = list(isobmff.until_damaged(isobmff.locations(cut, first(cut))))
    assert found == [Location(1, 0, ((100, 10),))]  # the whole entries before the damage
    with pytest.raises(Damaged, match="iloc runs past its end"):
        list(isobmff.locations(cut, first(cut)))
    for version, sizes in ((3, b"\x44\x00"), (1, b"\x24\x00"), (1, b"\x44\x10")):
        bad = full_box(b"iloc", version, sizes + good[14:])
        with pytest.raises(Damaged, match="iloc (version 3|field sizes)"):
            next(isobmff.locations(bad, first(bad)))
    # 0-byte fields make extents cost nothing: their number is bounded, all items together.
    half = isobmff.MAX_EXTENTS // 2
    many = iloc(0, (0, 0, 0, 0), [(1, 0, 0, [(0, 0, 0)] * half)] * 3)
    found = list(isobmff.until_damaged(isobmff.locations(many, first(many))))
    assert [len(place.extents) for place in found] == [half, half]
    bomb = full_box(
        b"iloc", 0, struct.pack(">BBH", 0, 0, 2000) + struct.pack(">HHH", 1, 0, 65535) * 2000
    )
    start = time.perf_counter()
    with pytest.raises(Damaged, match="extents"):
        list(isobmff.locations(bomb, first(bomb)))
    assert time.perf_counter() - start < 1


def test_properties_and_their_associations() -> None:
    ispe, colr = full_box(b"ispe", 0, bytes(8)), box(b"colr", b"nclx")
    ipco = box(b"ipco", ispe + colr)
    for version, flags in ((0, 0), (1, 1)):

        def entry(item: int, *indexes: int, version: int = version, flags: int = flags) -> bytes:
            wide = b"".join(i.to_bytes(2 if flags else 1, "big") for i in indexes)
            return item.to_bytes(4 if version else 2, "big") + bytes([len(indexes)]) + wide

        essential = 0x8000 if flags else 0x80
        entries = entry(1, essential | 1, 2) + entry(2, 0, 1) + entry(9, 3)  # 3: no such
        ipma = full_box(b"ipma", version, struct.pack(">I", 3) + entries, flags)
        iprp = box(b"iprp", ipco + ipma)
        # The top bit (essential) is no part of the index; index 0 is no property.
        assert isobmff.properties(iprp, first(iprp), {1, 2}) == {1: [ispe, colr], 2: [ispe]}
        with pytest.raises(Damaged, match="a property index is out of range"):
            isobmff.properties(iprp, first(iprp), {1, 2, 9})
        cut = box(b"iprp", ipco + full_box(b"ipma", version, ipma[12:-1], flags))
        with pytest.raises(Damaged, match="ipma runs past its end"):
            isobmff.properties(cut, first(cut), {1, 2})
    iprp = box(b"iprp", ipco)
    with pytest.raises(Damaged, match="no item properties"):
        isobmff.properties(iprp, first(iprp), {1})


def test_references_16_and_32_bit() -> None:
    for version, code in ((0, "H"), (1, "I")):
        dimg = box(b"dimg", struct.pack(f">{code}H{code}{code}{code}", 1, 3, 2, 3, 4))
        cdsc = box(b"cdsc", struct.pack(f">{code}H{code}", 5, 1, 1))
        iref = full_box(b"iref", version, dimg + cdsc)
        assert isobmff.references(iref, first(iref)) == {(1, b"dimg"): [2, 3, 4], (5, b"cdsc"): [1]}
        cut = full_box(b"iref", version, box(b"dimg", dimg[8:-1]))  # a target cut short
        with pytest.raises(Damaged, match="dimg runs past its end"):
            isobmff.references(cut, first(cut))


# -- item data ------------------------------------------------------------------------------


def test_read_item_from_the_file_or_from_idat() -> None:
    f = io.BytesIO(b"0123456789abcdef")

    def read(place: Location, limit: int = 100, idat: bytes = b"") -> bytes:
        return isobmff.read_item(f, place, idat, 16, limit)

    assert read(Location(1, 0, ((10, 3), (2, 2)))) == b"abc23"  # extents in their order
    assert read(Location(1, 1, ((1, 2), (0, 1))), idat=b"XYZ") == b"YZX"  # method 1: idat
    assert read(Location(1, 2, ((0, 4),))) == b""  # method 2 (from other items): not read
    assert read(Location(1, 0, ((0, 10), (10, 10))), limit=12) == b"0123456789ab"
    assert read(Location(1, 0, ((14, 10),))) == b"ef"  # the file ends: what there is
    assert read(Location(1, 0, ((1 << 63, 4), (0, 1)))) == b"0"  # past the end: nothing
    assert read(Location(1, 0, ((0, 1), (5, 0), (6, 1)))) == b"0"  # a 0-byte extent ends it
    asked: list[int] = []

    def counted(size: int) -> bytes:
        asked.append(size)
        return f.read(size)

    isobmff.read_item(f, Location(1, 0, ((0, 4), (8, 4))), b"", 16, 6, counted)
    assert asked == [4, 2]  # through `read`, and no more than the limit


def test_damage_raises_damaged_and_nothing_else() -> None:
    entries = [(1, 0, 0, [(1, 40, 10)]), (2, 1, 0, [(1, 0, 4)])]
    ipco = box(b"ipco", full_box(b"ispe", 0, bytes(8)))
    ipma = full_box(b"ipma", 0, struct.pack(">IHBB", 1, 1, 1, 0x81))
    iref = full_box(b"iref", 0, box(b"dimg", struct.pack(">HHH", 1, 1, 2)))
    tables = {
        b"pitm": full_box(b"pitm", 0, b"\x00\x01"),
        b"iinf": full_box(b"iinf", 0, b"\x00\x02" + infe(2, 1, b"grid") + infe(3, 2, b"hvc1")),
        b"iloc": iloc(1, (4, 4, 4, 4), entries),
        b"iprp": box(b"iprp", ipco + ipma),
        b"iref": iref,
    }
    readers = {
        b"pitm": isobmff.primary_item,
        b"iinf": lambda data, found: list(isobmff.items(data, found)),
        b"iloc": lambda data, found: list(isobmff.locations(data, found)),
        b"iprp": lambda data, found: isobmff.properties(data, found, {1, 2}),
        b"iref": isobmff.references,
    }
    rng = random.Random(5)
    for kind, seed in tables.items():
        readers[kind](seed, first(seed))  # the seed itself reads
        for _ in range(400):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.choice((0, 1, 0xFF, rng.randrange(256)))
            data = data[: rng.randrange(8, len(data) + 1)]
            try:
                found = next(isobmff.boxes(bytes(data)), None)
            except Damaged:
                continue
            if found is not None:
                with contextlib.suppress(Damaged):
                    readers[kind](bytes(data), found)


# -- what the two readers get from it -------------------------------------------------------


def heic(iloc_box: bytes, kind: bytes = b"hvc1", mdat: bytes = bytes(100)) -> bytes:
    """A HEIC of one coded image whose data is where `iloc_box` says (item 1)."""
    iinf = full_box(b"iinf", 0, b"\x00\x01" + infe(2, 1, kind))
    ipco = box(b"ipco", full_box(b"ispe", 0, struct.pack(">II", 64, 48)))
    ipma = full_box(b"ipma", 0, struct.pack(">IHBB", 1, 1, 1, 0x81))
    pitm = full_box(b"pitm", 0, b"\x00\x01")
    meta = full_box(b"meta", 0, pitm + iinf + iloc_box + box(b"iprp", ipco + ipma))
    return box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + meta + box(b"mdat", mdat)


def test_heic_with_lying_extents_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.heic"
    huge = 1 << 64 - 1
    for offset, length in ((huge, 10), (200, huge), (10**6, 10)):  # past the end, too long
        path.write_bytes(heic(iloc(0, (8, 8, 0, 0), [(1, 0, 0, [(0, offset, length)])])))
        assert heif.read_layout(path).tiles == (1,)
        # Before: OverflowError out of prepare_image, or "corrupt HEIF: cannot fit 'int'...".
        with pytest.raises(ImageError, match="^truncated HEIC: the file ends inside the image"):
            prepare_image(path)
    # 2,000 items of 65,535 extents that cost no bytes: before, a hang and gigabytes.
    items = struct.pack(">BBH", 0, 0, 2000) + struct.pack(">HHH", 1, 0, 65535) * 2000
    path.write_bytes(heic(full_box(b"iloc", 0, items)))
    start = time.perf_counter()
    with pytest.raises(ImageError, match="^corrupt HEIC: more than 10000 extents$"):
        heif.read_layout(path)
    assert time.perf_counter() - start < 1


def test_exif_and_xmp_items_in_idat_of_a_64_bit_meta() -> None:
    """containers reads the same tables: items in idat (construction method 1) after a base
    offset, in a meta box with a 64-bit size."""
    exif = b"\x00\x00\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"  # offset 0, an empty TIFF
    xmp = b"<x:xmpmeta/>"
    idat = box(b"idat", b"junk" + exif + xmp)
    entries = [(1, 1, 4, [(0, 0, len(exif))]), (2, 1, 4, [(0, len(exif), len(xmp))])]
    mime = infe(2, 2, b"mime", b"\x00application/rdf+xml\x00")
    iinf = full_box(b"iinf", 0, b"\x00\x02" + infe(2, 1, b"Exif") + mime)
    body = bytes(4) + iinf + iloc(1, (4, 4, 4, 0), entries) + idat
    data = box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + large_box(b"meta", body)
    found = containers.scan(io.BytesIO(data))
    assert (len(found.exif), found.xmp) == (1, [xmp])
    cut = data[: data.index(b"idat")]  # the meta box says it is longer than the file
    found = containers.scan(io.BytesIO(cut))
    assert (found.exif, found.xmp) == ([], [])
