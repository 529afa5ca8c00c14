"""Where each image format keeps its EXIF and XMP: `scan` walks a file's structure and returns
the raw EXIF (TIFF) blocks and XMP packets it holds, in file order, without decoding pixels.

| format | EXIF | XMP |
| --- | --- | --- |
| JPEG | every APP1 `Exif\\0\\0` | APP1 `http://ns.adobe.com/xap/1.0/\\0`, and Extended XMP |
| PNG | the `eXIf` chunk | `iTXt` chunk keyword `XML:com.adobe.xmp` (maybe compressed) |
| WebP | the `EXIF` chunk | the `XMP ` chunk |
| HEIF, HEIC, AVIF | `Exif` items of the `meta` box | `mime` item `application/rdf+xml` |
| JPEG XL | the `Exif` box | the `xml ` box |
| TIFF (and TIFF raws) | the file itself | tag 700 (read with the EXIF tags) |

Files are untrusted: every walk stops at the first structure that does not add up, after
`_MAX_PARTS` segments or chunks (`isobmff.MAX_BOXES` boxes, `isobmff.MAX_EXTENTS` pieces of
HEIF items), or at the image data once there is nothing left to find; bodies that are not
wanted are seeked over, not read; and at most `_BUDGET` bytes of metadata are read from one
file, whatever lengths it declares. Nothing here raises on bad data (`OSError` from the file
itself may)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from pipeline.media import isobmff, jpeg, tiff, xmp

_BUDGET = 8 << 20  # metadata read from one file, all blocks together
_MAX_EXIF = 1 << 20  # real EXIF blocks are a few KB; JPEG cannot hold more than 64 KB
_MAX_META = 1 << 20  # a HEIF meta box: item tables, a few KB even for a tiled photo
_MAX_PARTS = 20_000  # a PNG of 8 KB IDAT chunks reaches this at 160 MB

_JPEG_EXIF = b"Exif\x00"
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"
_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_XMP = b"XML:com.adobe.xmp\x00"
_JXL = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_TIFF = (b"II*\x00", b"MM\x00*")


@dataclass
class Found:
    exif: list[tiff.Reader] = field(default_factory=list)
    xmp: list[bytes] = field(default_factory=list)
    # JPEG Extended XMP pieces by GUID: (full length, offset, bytes); the main packet's
    # xmpNote:HasExtendedXMP says which GUID belongs to it.
    extended_xmp: dict[bytes, list[tuple[int, int, bytes]]] = field(default_factory=dict)


class _Budget:
    def __init__(self, f: BinaryIO) -> None:
        self.f, self.left = f, _BUDGET

    def read(self, size: int, cap: int = _BUDGET) -> bytes:
        data = self.f.read(max(0, min(size, cap, self.left)))
        self.left -= len(data)
        return data


def scan(f: BinaryIO) -> Found:
    found = Found()
    head = f.read(16)
    budget = _Budget(f)
    if head[:3] == b"\xff\xd8\xff":
        _jpeg(f, budget, found)
    elif head[:8] == _PNG:
        _png(f, budget, found)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        _webp(f, budget, found)
    elif head[4:8] == b"ftyp" or head[:12] == _JXL:
        _boxes(f, budget, found)
    elif head[:4] in _TIFF:
        found.exif.append(tiff.file_reader(f))
    return found


def _add_exif(found: Found, block: bytes) -> None:
    # Some writers keep JPEG's "Exif\0\0" before the TIFF header in PNG and WebP too.
    if block[:5] == _JPEG_EXIF:
        block = block[6:]
    if block[:4] in _TIFF:
        found.exif.append(tiff.bytes_reader(block))


def _jpeg(f: BinaryIO, budget: _Budget, found: Found) -> None:
    f.seek(2)
    for code, length in jpeg.segments(f, _MAX_PARTS):
        if code != 0xE1:
            continue
        body = budget.read(length, length)
        if body.startswith(_JPEG_EXIF):
            _add_exif(found, body)
        elif body.startswith(_JPEG_XMP):
            found.xmp.append(body[len(_JPEG_XMP) :])
        elif body.startswith(_JPEG_XMP_EXT) and len(body) > len(_JPEG_XMP_EXT) + 40:
            at = len(_JPEG_XMP_EXT)
            guid = body[at : at + 32]
            full, offset = struct.unpack(">II", body[at + 32 : at + 40])
            found.extended_xmp.setdefault(guid, []).append((full, offset, body[at + 40 :]))
        if len(body) < length:  # truncated file, or out of budget
            return


def _png(f: BinaryIO, budget: _Budget, found: Found) -> None:
    f.seek(8)
    have_exif = have_xmp = False
    for _ in range(_MAX_PARTS):
        head = f.read(8)
        if len(head) < 8:
            return
        length, kind = int.from_bytes(head[:4], "big"), head[4:]
        body_at = f.tell()
        if kind == b"IEND" or (kind == b"IDAT" and have_exif and have_xmp):
            return
        if kind == b"eXIf" and not have_exif:
            _add_exif(found, budget.read(length, _MAX_EXIF))
            have_exif = True
        elif (
            kind == b"iTXt"
            and not have_xmp
            # Peek at the keyword first: other iTXt chunks may be large and are not read.
            and budget.read(len(_PNG_XMP), len(_PNG_XMP)) == _PNG_XMP
        ):
            packet = _itxt_text(budget.read(length - len(_PNG_XMP), xmp.MAX_PACKET + 64))
            if packet:
                found.xmp.append(packet)
                have_xmp = True
        # The CRC is not checked: a damaged chunk yields a block the parsers reject anyway.
        f.seek(body_at + length + 4)


def _itxt_text(rest: bytes) -> bytes:
    """The text of an iTXt chunk after its keyword: compression flag and method, language
    tag, translated keyword, then the (maybe zlib-compressed) UTF-8 text."""
    if len(rest) < 2:
        return b""
    compressed, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) < 3:
        return b""
    text = parts[2]
    if compressed:
        return xmp.inflate(text) if method == 0 else b""
    return text


def _webp(f: BinaryIO, budget: _Budget, found: Found) -> None:
    # EXIF and XMP come after the image data in an extended WebP: seek over it.
    f.seek(12)
    have_exif = have_xmp = False
    for _ in range(_MAX_PARTS):
        head = f.read(8)
        if len(head) < 8 or (have_exif and have_xmp):
            return
        kind, length = head[:4], int.from_bytes(head[4:], "little")
        body_at = f.tell()
        if kind == b"EXIF" and not have_exif:
            _add_exif(found, budget.read(length, _MAX_EXIF))
            have_exif = True
        elif kind == b"XMP " and not have_xmp:
            found.xmp.append(budget.read(length, xmp.MAX_PACKET))
            have_xmp = True
        f.seek(body_at + length + (length & 1))  # chunks are padded to an even size


def _boxes(f: BinaryIO, budget: _Budget, found: Found) -> None:
    """HEIF/HEIC/AVIF (a `meta` box with items) and JPEG XL (`Exif` and `xml ` boxes)."""
    end = f.seek(0, os.SEEK_END)
    for box in isobmff.until_damaged(isobmff.file_boxes(f, end)):
        if box.end > end:
            return
        if box.kind == b"meta":
            meta = isobmff.read_body(f, box, _MAX_META, budget.read)
            _heif_meta(f, budget, found, meta, end)
            return
        if box.kind == b"Exif":  # JPEG XL: a 4-byte offset to the TIFF header, then the block
            _add_exif(found, _skip_offset(isobmff.read_body(f, box, _MAX_EXIF, budget.read)))
        elif box.kind == b"xml ":
            found.xmp.append(isobmff.read_body(f, box, xmp.MAX_PACKET, budget.read))


def _skip_offset(item: bytes) -> bytes:
    """An Exif item (HEIF) or box (JPEG XL) starts with the offset of the TIFF header from
    there (past an optional "Exif\\0\\0" or APP1 header); some writers get it wrong, so look
    for the header nearby when it is not where the offset says."""
    if len(item) < 4:
        return b""
    start = 4 + int.from_bytes(item[:4], "big")
    if item[start : start + 4] in _TIFF:
        return item[start:]
    near = [i for i in (item.find(m, 4, 4 + 64) for m in _TIFF) if i >= 0]
    return item[min(near) :] if near else b""


def _heif_meta(f: BinaryIO, budget: _Budget, found: Found, meta: bytes, end: int) -> None:
    # meta is a full box: version and flags, then child boxes. Each table is read as far as
    # it adds up.
    children = {box.kind: box for box in isobmff.until_damaged(isobmff.boxes(meta, 4))}
    iinf, iloc, idat = children.get(b"iinf"), children.get(b"iloc"), children.get(b"idat")
    exif_ids: list[int] = []
    xmp_ids: list[int] = []
    for info in isobmff.until_damaged(isobmff.items(meta, iinf)) if iinf else ():
        if info.type == b"Exif":
            exif_ids.append(info.id)
        elif info.type == b"mime" and info.content_type.strip() == b"application/rdf+xml":
            xmp_ids.append(info.id)
    wanted = set(exif_ids) | set(xmp_ids)
    places: dict[int, isobmff.Location] = {}
    for place in isobmff.until_damaged(isobmff.locations(meta, iloc)) if iloc and wanted else ():
        if place.item in wanted:
            places[place.item] = place
    idat_body = meta[idat.body : idat.end] if idat else b""
    for item in exif_ids + xmp_ids:
        cap = _MAX_EXIF if item in exif_ids else xmp.MAX_PACKET
        place = places.get(item)
        data = isobmff.read_item(f, place, idat_body, end, cap, budget.read) if place else b""
        if item in exif_ids:
            _add_exif(found, _skip_offset(data))
        elif data:
            found.xmp.append(data)
