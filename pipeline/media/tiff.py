"""The few tags pipe uses from a TIFF/EXIF block: the body of a JPEG's Exif APP1, a PNG eXIf
chunk, a WebP EXIF chunk, a HEIF Exif item, or a whole TIFF file.

Blocks are untrusted, so the work is bounded whatever they claim: only IFD0 and the Exif and
GPS IFDs it points to are read, each once (an offset loop cannot recur), at most
`_MAX_ENTRIES` entries each, and a value is read only for a wanted tag, capped in size.
Offsets past the end read as nothing. Nothing here raises on bad data."""

from __future__ import annotations

import struct
from collections.abc import Callable
from fractions import Fraction
from typing import BinaryIO

# (offset, size) -> the bytes there; fewer (or none) past the end of the block.
Reader = Callable[[int, int], bytes]
Value = str | bytes | tuple[int, ...] | tuple[Fraction | None, ...]

# Keys are exifread's names ("Image Make", "EXIF DateTimeOriginal", "GPS GPSLatitude").
_WANTED: dict[str, dict[int, str]] = {
    "Image": {0x010F: "Make", 0x0110: "Model", 0x0132: "DateTime", 0x02BC: "XMP"},
    "EXIF": {0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized"},
    "GPS": {1: "GPSLatitudeRef", 2: "GPSLatitude", 3: "GPSLongitudeRef", 4: "GPSLongitude"},
}
_SUB_IFDS = {0x8769: "EXIF", 0x8825: "GPS"}
_XMP_TAG = 0x02BC

_MAX_ENTRIES = 1024  # real IFDs have tens; the tags we want sort early anyway
_MAX_VALUE = 4096  # makes, models and dates are short; a longer claim is cut, not trusted
MAX_XMP = 4 << 20

# TIFF field type -> (bytes per value, struct code); 5 and 10 are (un)signed rationals.
_TYPES = {
    1: (1, "s"),  # BYTE and UNDEFINED come back as bytes: XMP (tag 700) is either
    2: (1, "s"),
    3: (2, "H"),
    4: (4, "I"),
    5: (8, "I"),
    6: (1, "b"),
    7: (1, "s"),
    8: (2, "h"),
    9: (4, "i"),
    10: (8, "i"),
    13: (4, "I"),
}


def bytes_reader(block: bytes) -> Reader:
    return lambda offset, size: block[offset : offset + size]


def file_reader(f: BinaryIO) -> Reader:
    """Random access to a TIFF file whose IFDs may sit anywhere, even after the pixels."""

    def read(offset: int, size: int) -> bytes:
        f.seek(offset)
        return f.read(size)

    return read


def read_tags(read: Reader) -> dict[str, Value]:
    """The wanted tags found in the block, as str (ASCII), bytes (BYTE/UNDEFINED), ints, or
    rationals (a Fraction, or None for x/0). An empty dict when it is not a TIFF block."""
    head = read(0, 8)
    if len(head) < 8:
        return {}
    if head[:4] == b"II*\x00":
        order = "<"
    elif head[:4] == b"MM\x00*":
        order = ">"
    else:
        return {}
    tags: dict[str, Value] = {}
    (first,) = struct.unpack(order + "I", head[4:8])
    pointers = _read_ifd(read, order, first, "Image", tags)
    for tag, name in _SUB_IFDS.items():
        if tag in pointers:
            _read_ifd(read, order, pointers[tag], name, tags)
    return tags


def _read_ifd(
    read: Reader, order: str, offset: int, name: str, tags: dict[str, Value]
) -> dict[int, int]:
    """Store the wanted tags of one IFD; return the sub-IFD offsets it holds (IFD0 only)."""
    head = read(offset, 2)
    if len(head) < 2:
        return {}
    (count,) = struct.unpack(order + "H", head)
    table = read(offset + 2, 12 * min(count, _MAX_ENTRIES))
    wanted = _WANTED[name]
    pointers: dict[int, int] = {}
    for at in range(0, len(table) - 11, 12):
        tag, kind, n = struct.unpack_from(order + "HHI", table, at)
        field = table[at + 8 : at + 12]
        if name == "Image" and tag in _SUB_IFDS and kind in (4, 13) and n >= 1:
            pointers[tag] = struct.unpack(order + "I", field)[0]
        elif tag in wanted:
            cap = MAX_XMP if tag == _XMP_TAG else _MAX_VALUE
            value = _value(read, order, kind, n, field, cap)
            if value is not None:
                tags.setdefault(f"{name} {wanted[tag]}", value)
    return pointers


def _value(read: Reader, order: str, kind: int, count: int, field: bytes, cap: int) -> Value | None:
    if kind not in _TYPES or count == 0:
        return None
    size, code = _TYPES[kind]
    total = size * count
    if total <= 4:
        data = field[:total]
    else:
        (where,) = struct.unpack(order + "I", field)
        data = read(where, min(total, cap))
        if not data:  # pointing past the end: no value, not an empty one
            return None
    if kind == 2:  # ASCII: NUL-terminated; what follows a NUL is padding or junk
        text = data.split(b"\x00", 1)[0]
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            return text.decode("latin-1")
    if code == "s":
        return data
    n = len(data) // size
    if kind in (5, 10):
        pairs = struct.unpack(f"{order}{2 * n}{code}", data[: 8 * n])
        return tuple(
            Fraction(a, b) if b else None for a, b in zip(pairs[::2], pairs[1::2], strict=True)
        )
    return struct.unpack(f"{order}{n}{code}", data[: size * n])
