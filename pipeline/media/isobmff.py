"""ISO base media file format (ISO/IEC 14496-12) boxes, and the item tables of a HEIF `meta`
box (ISO/IEC 23008-12): what `containers` finds a photo's EXIF and XMP items with, and `heif`
a HEIC's tiles.

A box is a 32-bit size and a 4-byte type, then its body; size 1 means a 64-bit size follows
the type, size 0 that the box runs to the end of its parent (the file, at the top). A full
box starts its body with a version byte and 24 bits of flags.

Files are untrusted. The tables are read from the meta box's bytes, already in memory; of the
file, `file_boxes` reads only headers, and `read_body` and `read_item` read no more than they
are allowed. What does not add up raises `Damaged`, nothing else: a box larger than its
parent, a table that runs past its box, more than `MAX_BOXES` boxes in one parent or
`MAX_EXTENTS` extents in one `iloc`. Boxes and entries are yielded one by one, so a reader
that keeps what it could read (`until_damaged`) gets all of them before the damage."""

from __future__ import annotations

import struct
from collections.abc import Callable, Container, Iterable, Iterator
from typing import Any, BinaryIO, NamedTuple, TypeVar

MAX_BOXES = 20_000  # in one parent: a tiled photo's item table holds a few hundred
MAX_EXTENTS = 10_000  # in one iloc, all items together (0-byte fields make them cost nothing)

_T = TypeVar("_T")
_INFE = {2: ">4xHH4s", 3: ">4xIH4s"}  # by version: item ID, protection index, item type
_FIELD = {0: "", 4: "I", 8: "Q"}  # iloc field sizes in bytes, as struct codes


class Damaged(Exception):
    """A box structure that does not add up."""


class Box(NamedTuple):
    kind: bytes  # the 4-byte type
    offset: int  # where the box starts: its header
    body: int  # where its body starts
    end: int  # where it ends


class ItemInfo(NamedTuple):
    """An `infe` entry of version 2 or 3 (the earlier ones have no item type)."""

    id: int
    type: bytes  # "hvc1", "grid", "Exif", "mime"...
    content_type: bytes  # for a "mime" item, as written (XMP: "application/rdf+xml")


class Location(NamedTuple):
    """An `iloc` entry: where an item's bytes are."""

    item: int
    construction: int  # 0: at file offsets, 1: in the meta box's idat, 2: in other items
    extents: tuple[tuple[int, int], ...]  # (offset, length), the base offset added in

    @property
    def size(self) -> int:
        return sum(length for _, length in self.extents)


def until_damaged(parts: Iterable[_T]) -> Iterator[_T]:
    """What `parts` yields before it raises `Damaged`: for readers that keep what they could
    read."""
    try:
        yield from parts
    except Damaged:
        return


def _header(data: bytes, i: int, at: int, end: int) -> Box:
    """The box whose header is at data[i:], and at `at` in a parent that ends at `end`. A size
    smaller than the header, as a 64-bit size that `data` cannot hold, gives `end < body`."""
    size, kind = struct.unpack_from(">I4s", data, i)
    body = at + 8
    if size == 1 and len(data) >= i + 16:
        (size,) = struct.unpack_from(">Q", data, i + 8)
        body = at + 16
    elif size == 0:
        size = end - at
    return Box(kind, at, body, at + size)


def boxes(data: bytes, at: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes in data[at:end], in order; a box that does not fit in it raises `Damaged`
    (fewer than 8 bytes left over are not a box, and are passed over)."""
    end = len(data) if end is None else end
    count = 0
    while at + 8 <= end:
        if count == MAX_BOXES:
            raise Damaged(f"more than {MAX_BOXES} boxes")
        box = _header(data, at, at, end)
        if box.end < box.body or box.end > end:
            raise Damaged(f"box {box.kind!r} runs past its parent")
        yield box
        at, count = box.end, count + 1


def file_boxes(f: BinaryIO, end: int) -> Iterator[Box]:
    """The boxes at the top of a file `end` bytes long, reading their headers only. A box may
    say it ends past `end`; what that means is the caller's to say (after it, there is no
    box). A size smaller than its header raises `Damaged`, as do more than `MAX_BOXES`."""
    at = count = 0
    while at + 8 <= end:
        if count == MAX_BOXES:
            raise Damaged(f"more than {MAX_BOXES} boxes")
        f.seek(at)
        head = f.read(8)
        if len(head) < 8:  # the file got shorter
            return
        if head[:4] == b"\x00\x00\x00\x01":
            head += f.read(8)
        box = _header(head, 0, at, end)
        if box.end < box.body:
            raise Damaged(f"bad size for box {box.kind!r}")
        yield box
        at, count = box.end, count + 1


def read_body(f: BinaryIO, box: Box, cap: int, read: Callable[[int], bytes] | None = None) -> bytes:
    """Up to `cap` bytes of a box's body in a file (fewer where the file ends), with `read`
    (by default `f.read`)."""
    f.seek(box.body)
    return (read or f.read)(min(box.end - box.body, cap))


def _within(box: Box, end: int) -> int:
    """`end`, where fields being read end, if that is within `box`."""
    if end > box.end:
        raise Damaged(f"{box.kind.decode('latin-1')} runs past its end")
    return end


def full_box(data: bytes, box: Box) -> tuple[int, int, int]:
    """A full box's version, flags, and where the rest of its body starts."""
    at = _within(box, box.body + 4)
    return data[box.body], int.from_bytes(data[box.body + 1 : at], "big"), at


def _unpack(fmt: str, data: bytes, at: int, box: Box) -> tuple[tuple[Any, ...], int]:
    """The fields of struct format `fmt` at `at`, which must be within `box`, and where they
    end."""
    end = _within(box, at + struct.calcsize(fmt))
    return struct.unpack_from(fmt, data, at), end


def primary_item(data: bytes, pitm: Box) -> int:
    """The item ID a `pitm` box names: the image a viewer shows."""
    version, _, at = full_box(data, pitm)
    return int(_unpack(">I" if version else ">H", data, at, pitm)[0][0])


def items(data: bytes, iinf: Box) -> Iterator[ItemInfo]:
    """The entries of an `iinf` box that name an item type (versions 2 and 3); others, and
    entries too short for their type, are passed over."""
    version, _, at = full_box(data, iinf)
    at += 4 if version else 2  # the entry count: there are as many as there are boxes
    for box in boxes(data, at, iinf.end):
        if box.kind != b"infe" or box.end == box.body:
            continue
        fmt = _INFE.get(data[box.body])
        if fmt is None or box.body + struct.calcsize(fmt) > box.end:
            continue
        item, _, kind = struct.unpack_from(fmt, data, box.body)
        content_type = b""
        if kind == b"mime":
            strings = data[box.body + struct.calcsize(fmt) : box.end].split(b"\x00")
            content_type = strings[1] if len(strings) > 1 else b""  # after the item name
        yield ItemInfo(item, kind, content_type)


def locations(data: bytes, iloc: Box) -> Iterator[Location]:
    """The entries of an `iloc` box, versions 0 to 2, in order."""
    version, _, at = full_box(data, iloc)
    if version > 2:
        raise Damaged(f"iloc version {version}")
    id_code = "I" if version == 2 else "H"
    (sizes, count), at = _unpack(f">H{id_code}", data, at, iloc)  # the count is ID-wide
    offset_size, length_size, base_size = sizes >> 12, sizes >> 8 & 15, sizes >> 4 & 15
    index_size = sizes & 15 if version else 0
    if any(size not in _FIELD for size in (offset_size, length_size, base_size)):
        raise Damaged("iloc field sizes other than 0, 4 or 8 bytes")
    # Each entry: item ID, construction method (versions 1 and 2), data reference index
    # (0: this file), base offset, extent count; then each extent: index, offset, length.
    entry = f">{id_code}{'H' if version else ''}2x{_FIELD[base_size]}H"
    extent = f">{index_size}x{_FIELD[offset_size]}{_FIELD[length_size]}"
    extents_left = MAX_EXTENTS
    for _ in range(count):
        fields, at = _unpack(entry, data, at, iloc)
        item, extent_count = fields[0], fields[-1]
        construction = fields[1] & 15 if version else 0
        base = fields[-2] if base_size else 0
        extents_left -= extent_count
        if extents_left < 0:
            raise Damaged(f"more than {MAX_EXTENTS} extents")
        start, at = at, _within(iloc, at + extent_count * struct.calcsize(extent))
        # A 0-byte field is not there, and 0.
        pieces = struct.iter_unpack(extent, data[start:at]) if at > start else [()] * extent_count
        extents = tuple(
            (base + (e[0] if offset_size else 0), e[-1] if length_size else 0) for e in pieces
        )
        yield Location(item, construction, extents)


def properties(data: bytes, iprp: Box, of: Container[int]) -> dict[int, list[bytes]]:
    """Item ID -> its properties, in `ipma` order, for the items `of`: whole boxes of `ipco`
    (ispe, hvcC, colr, irot...). As in libheif, a property that is not there is an error
    only for these items."""
    children = {box.kind: box for box in boxes(data, iprp.body, iprp.end)}
    if b"ipco" not in children or b"ipma" not in children:
        raise Damaged("no item properties")
    ipco, ipma = children[b"ipco"], children[b"ipma"]
    boxed = [data[box.offset : box.end] for box in boxes(data, ipco.body, ipco.end)]
    version, flags, at = full_box(data, ipma)
    (count,), at = _unpack(">I", data, at, ipma)
    entry = ">IB" if version else ">HB"  # item ID, association count
    width, mask = (2, 0x7FFF) if flags & 1 else (1, 0x7F)  # the top bit: essential
    found: dict[int, list[bytes]] = {}
    for _ in range(count):
        (item, n), at = _unpack(entry, data, at, ipma)
        start, at = at, _within(ipma, at + n * width)
        indices = struct.unpack_from(f">{n}H", data, start) if width == 2 else data[start:at]
        if item not in of:
            continue
        listed = found.setdefault(item, [])
        for value in indices:
            i = value & mask
            if i > len(boxed):
                raise Damaged("a property index is out of range")
            if i:  # 0: no property
                listed.append(boxed[i - 1])
    return found


def references(data: bytes, iref: Box) -> dict[tuple[int, bytes], list[int]]:
    """(item ID, reference type) -> the item IDs it refers to, in order: for a grid's
    `dimg`, its tiles row by row."""
    version, _, at = full_box(data, iref)
    code = "I" if version else "H"
    found: dict[tuple[int, bytes], list[int]] = {}
    for box in boxes(data, at, iref.end):
        (source, n), at = _unpack(f">{code}H", data, box.body, box)
        targets, _ = _unpack(f">{n}{code}", data, at, box)
        found.setdefault((source, box.kind), []).extend(targets)
    return found


def read_item(
    f: BinaryIO,
    place: Location,
    idat: bytes,
    end: int,
    limit: int,
    read: Callable[[int], bytes] | None = None,
) -> bytes:
    """Up to `limit` bytes of an item, its extents in order: with construction method 0 from
    the file `f`, `end` bytes long (with `read`, by default `f.read`); with method 1 from
    `idat`, the body of the meta box's idat; other methods give nothing. An extent at or past
    `end` gives nothing (a 64-bit offset cannot even be sought), one the file cuts short what
    there is, and a 0-byte extent ends the item: fewer than `place.size` bytes mean one of
    these, or `limit`."""
    parts: list[bytes] = []
    got = 0
    for offset, length in place.extents:
        want = min(length, limit - got)
        if want <= 0:
            break
        if place.construction == 0 and offset < end:
            f.seek(offset)
            part = (read or f.read)(want)
        elif place.construction == 1:
            part = idat[offset : offset + want]
        else:
            continue
        parts.append(part)
        got += len(part)
    return b"".join(parts)
