"""HEIC photos, decoded a tile at a time.

Phones store a HEIC photo as a grid of small HEVC images (512x512 on iPhones) and libheif,
behind pillow-heif, decodes all of them into one full-size RGB image: a 48 MP photo holds
~290 MB while it does. Here the container is read directly, each tile is handed to
pillow-heif on its own (wrapped in a minimal HEIF file) and shrunk into a small canvas
straight away, so a 48 MP photo holds one tile and a canvas of 1/16 of its pixels: ~20 MB.
A plain HEIC (one coded image) is the same thing with a single tile.

The rest is what libheif would do: crop to `clap`, then `irot` and `imir`, in the order the
file lists them (HEIF ignores the EXIF orientation, which only repeats them).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

from PIL import Image

from pipeline.media.formats import ImageError, StrPath, register_heif

_MAX_META = 16 * 1024 * 1024  # a photo's meta box is a few KB; more is not a photo
_TRANSFORMS = {b"clap", b"irot", b"imir"}
_SHARED = {b"colr", b"pixi"}
_DECODER_PIXELS = 4_000_000
_CODED = {b"hvc1"}  # HEVC; AV1 ('av01') files are AVIF and go to Pillow


class _Damaged(Exception):
    pass


class _Truncated(_Damaged):
    pass


def _error(e: Exception) -> ImageError:
    text = " ".join(str(e).split()) or type(e).__name__
    return ImageError(f"{'truncated' if isinstance(e, _Truncated) else 'corrupt'} HEIC: {text}")


@dataclass
class _Item:
    type: bytes = b""
    construction: int = 0
    base: int = 0
    extents: list[tuple[int, int]] = field(default_factory=list)
    properties: list[bytes] = field(default_factory=list)  # whole boxes, in ipma order


@dataclass(frozen=True)
class Layout:
    """Where a HEIC photo's pixels are: a grid of coded tiles, and what to do to them."""

    width: int  # the assembled image, before any clap crop
    height: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    tiles: tuple[int, ...]  # item IDs, row by row
    crop: tuple[float, float, float, float]  # clap: (left, top, right, bottom)
    transposes: tuple[Image.Transpose, ...]  # irot/imir, in order, after the crop
    items: dict[int, _Item]
    idat: bytes
    shared: tuple[bytes, ...] = ()  # the photo's colr/pixi, for tiles that have none

    @property
    def size(self) -> tuple[int, int]:
        """The stored size: after the crop, before rotating."""
        left, top, right, bottom = self.crop
        return round(right - left), round(bottom - top)

    def cost(self, size: tuple[int, int]) -> int:
        """Pixels held while decoding to `size`: the reduced canvas, one tile with libheif's
        own YCbCr and RGB copies of it, and libheif's decoder (measured: 28 MB for 12 MP,
        38 MB for 48 MP, i.e. 7 and 9.5 MP of 4 bytes)."""
        k = self.factor(size)
        canvas = -(-self.width // k) * -(-self.height // k)
        return canvas + 3 * self.tile_width * self.tile_height + _DECODER_PIXELS

    def factor(self, size: tuple[int, int]) -> int:
        """The power of two the tiles are reduced by: as large as leaves the photo at least
        `size`, and dividing the tile size, so tiles reduce on their own."""
        width, height = self.size
        k = 1
        while (
            width >= 2 * k * size[0]
            and height >= 2 * k * size[1]
            and self.tile_width % (2 * k) == 0
            and self.tile_height % (2 * k) == 0
        ):
            k *= 2
        return k


def open_source(path: StrPath) -> HeifSource:
    register_heif()  # first, so a missing pillow-heif is what the error names
    return HeifSource(path, read_layout(path))


class HeifSource:
    format = "HEIF"

    def __init__(self, path: StrPath, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self.size = layout.size
        self.transposes = layout.transposes

    def plan(self, size: tuple[int, int]) -> int:
        return self.layout.cost(size)

    def decode(self, size: tuple[int, int]) -> Image.Image:
        return decode(self.path, self.layout, size)

    def close(self) -> None:
        pass


def read_layout(path: StrPath) -> Layout:
    """Read the container's index (no pixel data). Raises ImageError for what is not a
    HEIC photo pipe can decode, naming why."""
    try:
        with open(path, "rb") as f:
            return _layout(f)
    except (_Damaged, struct.error, IndexError, ValueError, ZeroDivisionError) as e:
        raise _error(e) from None


def decode(path: StrPath, layout: Layout, size: tuple[int, int]) -> Image.Image:
    """The photo at `size` (as stored: before `layout.transposes`), RGB or L."""
    try:
        return _decode(path, layout, size)
    except _Damaged as e:
        raise _error(e) from None


def _decode(path: StrPath, layout: Layout, size: tuple[int, int]) -> Image.Image:
    heif = register_heif()
    k = layout.factor(size)
    # reduce(k) averages k x k blocks; as k divides the tile size, no block straddles two
    # tiles, so reducing tile by tile is reducing the whole photo.
    canvas: Image.Image | None = None
    with open(path, "rb") as f:
        for index, item in enumerate(layout.tiles):
            row, column = divmod(index, layout.columns)
            left, top = column * layout.tile_width, row * layout.tile_height
            if left >= layout.width or top >= layout.height:
                continue  # a tile wholly outside the photo (a grid may overhang it)
            tile = _decode_tile(heif, f, layout, item)
            if left + tile.width > layout.width or top + tile.height > layout.height:
                tile = tile.crop((0, 0, layout.width - left, layout.height - top))
            if canvas is None:
                canvas = Image.new(tile.mode, (-(-layout.width // k), -(-layout.height // k)))
            elif tile.mode != canvas.mode:
                tile = tile.convert(canvas.mode)
            canvas.paste(tile.reduce(k) if k > 1 else tile, (left // k, top // k))
    if canvas is None:
        raise _Damaged("no tiles")
    left, top, right, bottom = layout.crop
    box = (left / k, top / k, right / k, bottom / k)
    if canvas.size == size and box == (0, 0, *canvas.size):
        return canvas
    # What is left is a factor under 2: area averaging, as for a drafted JPEG.
    return canvas.resize(size, Image.Resampling.BOX, box=box)


def _decode_tile(heif: object, f: BinaryIO, layout: Layout, item_id: int) -> Image.Image:
    item = layout.items.get(item_id)
    if item is None or item.type not in _CODED:
        kind = item.type.decode("latin-1") if item else "missing"
        raise ImageError(f"HEIC photo: a tile is {kind!r}, not HEVC")
    data = _read_item(f, item, layout.idat)
    try:
        heif_file = heif.open_heif(  # type: ignore[attr-defined]
            io.BytesIO(_single_image_file(item, data, layout.shared)), convert_hdr_to_8bit=True
        )
        tile = heif_file[0]
        return Image.frombytes(tile.mode, tile.size, tile.data, "raw", tile.mode, tile.stride)
    except (ValueError, RuntimeError, OSError, EOFError, SyntaxError) as e:
        raise _Damaged(str(e)) from None


# -- reading the container -----------------------------------------------------------------


def _boxes(data: bytes, at: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[at:end]."""
    end = len(data) if end is None else end
    found = []
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise _Damaged(f"box {kind!r} runs past its parent")
        found.append((kind, at + header, at + size))
        at += size
    return found


def _top_level_meta(f: BinaryIO) -> bytes:
    """The file's 'meta' box payload, read without reading the media data around it."""
    f.seek(0, io.SEEK_END)
    file_size = f.tell()
    at = 0
    while at + 8 <= file_size:
        f.seek(at)
        header = f.read(16)
        if len(header) < 8:
            break
        size, kind = struct.unpack_from(">I4s", header)
        skip = 8
        if size == 1 and len(header) == 16:
            (size,) = struct.unpack_from(">Q", header, 8)
            skip = 16
        elif size == 0:
            size = file_size - at
        if size < skip:
            raise _Damaged(f"bad size for box {kind!r}")
        if kind == b"meta":
            if size > _MAX_META:
                raise _Damaged("meta box too large")
            f.seek(at + skip)
            payload = f.read(size - skip)
            if len(payload) < size - skip:
                raise _Truncated("the file ends inside its index")
            return payload
        at += size
    raise _Damaged("no meta box")


def _layout(f: BinaryIO) -> Layout:
    meta = _top_level_meta(f)
    children = {kind: (start, end) for kind, start, end in _boxes(meta, 4)}  # FullBox: skip 4
    for needed in (b"pitm", b"iinf", b"iloc", b"iprp"):
        if needed not in children:
            raise _Damaged(f"no {needed.decode()} box")
    primary = _pitm(meta, *children[b"pitm"])
    items = _iinf(meta, *children[b"iinf"])
    _iloc(meta, *children[b"iloc"], items)
    _iprp(meta, *children[b"iprp"], items)
    references = _iref(meta, *children[b"iref"]) if b"iref" in children else {}
    idat = meta[slice(*children[b"idat"])] if b"idat" in children else b""

    item = items.get(primary)
    if item is None:
        raise _Damaged("the primary image is missing")
    ispe = _property(item, b"ispe")
    if item.type == b"grid":
        tiles = tuple(references.get((primary, b"dimg"), ()))
        grid = _read_item(f, item, idat)
        wide = grid[1] & 1
        rows, columns = grid[2] + 1, grid[3] + 1
        width, height = struct.unpack_from(">II" if wide else ">HH", grid, 4)
        if not tiles or len(tiles) != rows * columns:
            raise _Damaged(f"grid of {rows}x{columns} has {len(tiles)} tiles")
        first = items.get(tiles[0])
        tile_ispe = _property(first, b"ispe") if first else None
        if tile_ispe is None:
            raise _Damaged("a tile has no size")
        tile_width, tile_height = struct.unpack_from(">II", tile_ispe, 12)
    elif item.type in _CODED:
        if ispe is None:
            raise _Damaged("the image has no size")
        width, height = struct.unpack_from(">II", ispe, 12)
        tiles, rows, columns, tile_width, tile_height = (primary,), 1, 1, width, height
    elif item.type == b"av01":  # AVIF files say so in their brands; this one does not
        raise ImageError("HEIF with AV1 inside but not marked AVIF: not supported")
    else:
        kind = item.type.decode("latin-1")
        raise ImageError(f"HEIC photo: its main image is of type {kind!r}, which pipe cannot read")
    if min(width, height, tile_width, tile_height) <= 0:
        raise _Damaged("zero size")
    if columns * tile_width < width or rows * tile_height < height:
        raise _Damaged("tiles do not cover the image")
    crop, transposes = _transforms(item, width, height)
    shared = tuple(p for p in item.properties if p[4:8] in _SHARED)
    return Layout(
        width,
        height,
        columns,
        rows,
        tile_width,
        tile_height,
        tiles,
        crop,
        transposes,
        items,
        idat,
        shared,
    )


def _full_box(data: bytes, at: int) -> tuple[int, int, int]:
    """version, flags, payload start."""
    version, flags = data[at], int.from_bytes(data[at + 1 : at + 4], "big")
    return version, flags, at + 4


def _pitm(data: bytes, start: int, end: int) -> int:
    version, _, at = _full_box(data, start)
    return struct.unpack_from(">I" if version else ">H", data, at)[0]


def _iinf(data: bytes, start: int, end: int) -> dict[int, _Item]:
    version, _, at = _full_box(data, start)
    at += 4 if version else 2
    items = {}
    for kind, s, _ in _boxes(data, at, end):
        if kind != b"infe":
            continue
        version, _, p = _full_box(data, s)
        if version < 2:
            continue  # no item type: not an image item
        if version == 2:
            (item_id,) = struct.unpack_from(">H", data, p)
            p += 2
        else:
            (item_id,) = struct.unpack_from(">I", data, p)
            p += 4
        items[item_id] = _Item(type=data[p + 2 : p + 6])
    return items


def _iloc(data: bytes, start: int, end: int, items: dict[int, _Item]) -> None:
    version, _, at = _full_box(data, start)
    offset_size, length_size = data[at] >> 4, data[at] & 15
    base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version else 0
    at += 2

    def number(size: int) -> int:
        nonlocal at
        value = int.from_bytes(data[at : at + size], "big") if size else 0
        if at + size > end:
            raise _Damaged("iloc runs past its end")
        at += size
        return value

    count = number(4 if version == 2 else 2)
    for _ in range(count):
        item_id = number(4 if version == 2 else 2)
        construction = number(2) & 15 if version else 0
        number(2)  # data_reference_index: 0, this file
        base = number(base_size)
        extents = []
        for _ in range(number(2)):
            number(index_size)
            offset = number(offset_size)
            extents.append((offset, number(length_size)))
        if item_id in items:
            items[item_id].construction = construction
            items[item_id].base = base
            items[item_id].extents = extents


def _iprp(data: bytes, start: int, end: int, items: dict[int, _Item]) -> None:
    children = {kind: (s, e) for kind, s, e in _boxes(data, start, end)}
    if b"ipco" not in children or b"ipma" not in children:
        raise _Damaged("no item properties")
    ipco = _boxes(data, *children[b"ipco"])
    starts = [children[b"ipco"][0]] + [e for _, _, e in ipco[:-1]]
    properties = [data[s:e] for s, (_, _, e) in zip(starts, ipco, strict=True)]
    version, flags, at = _full_box(data, children[b"ipma"][0])
    (count,) = struct.unpack_from(">I", data, at)
    at += 4
    for _ in range(count):
        if version < 1:
            (item_id,) = struct.unpack_from(">H", data, at)
            at += 2
        else:
            (item_id,) = struct.unpack_from(">I", data, at)
            at += 4
        n = data[at]
        at += 1
        for _ in range(n):
            if flags & 1:
                (value,) = struct.unpack_from(">H", data, at)
                index = value & 0x7FFF
                at += 2
            else:
                index = data[at] & 0x7F
                at += 1
            if index and item_id in items:
                if index > len(properties):
                    raise _Damaged("a property index is out of range")
                items[item_id].properties.append(properties[index - 1])


def _iref(data: bytes, start: int, end: int) -> dict[tuple[int, bytes], list[int]]:
    version, _, at = _full_box(data, start)
    fmt, width = (">I", 4) if version else (">H", 2)
    references: dict[tuple[int, bytes], list[int]] = {}
    for kind, s, _ in _boxes(data, at, end):
        (source,) = struct.unpack_from(fmt, data, s)
        (count,) = struct.unpack_from(">H", data, s + width)
        targets = [
            struct.unpack_from(fmt, data, s + width + 2 + i * width)[0] for i in range(count)
        ]
        references.setdefault((source, kind), []).extend(targets)
    return references


def _property(item: _Item, kind: bytes) -> bytes | None:
    return next((p for p in item.properties if p[4:8] == kind), None)


def _read_item(f: BinaryIO, item: _Item, idat: bytes) -> bytes:
    parts = []
    for offset, length in item.extents:
        if item.construction == 1:
            start = item.base + offset
            part = idat[start : start + length]
        elif item.construction == 0:
            f.seek(item.base + offset)
            part = f.read(length)
        else:
            raise ImageError("HEIC photo: its data is stored in a way pipe cannot read")
        if len(part) < length or not length:
            raise _Truncated("the file ends inside the image data")
        parts.append(part)
    if not parts:
        raise _Damaged("an image has no data")
    return b"".join(parts)


def _transforms(
    item: _Item, width: int, height: int
) -> tuple[tuple[float, float, float, float], tuple[Image.Transpose, ...]]:
    crop = (0.0, 0.0, float(width), float(height))
    transposes: list[Image.Transpose] = []
    for box in item.properties:
        kind, payload = box[4:8], box[8:]
        if kind == b"clap" and not transposes:  # a clap after a rotation would be odd; skip
            n = struct.unpack(">IIIIiIiI", payload[:32])
            clean_w, clean_h = Fraction(n[0], n[1]), Fraction(n[2], n[3])
            centre_x = Fraction(n[4], n[5]) + Fraction(width - 1, 2)
            centre_y = Fraction(n[6], n[7]) + Fraction(height - 1, 2)
            left = max(0, round(centre_x - (clean_w - 1) / 2))
            top = max(0, round(centre_y - (clean_h - 1) / 2))
            right = min(width, left + round(clean_w))
            bottom = min(height, top + round(clean_h))
            if right > left and bottom > top:
                crop = (float(left), float(top), float(right), float(bottom))
        elif kind == b"irot":
            turn = payload[0] & 3  # quarter turns anticlockwise
            if turn:
                transposes.append(
                    (
                        Image.Transpose.ROTATE_90,
                        Image.Transpose.ROTATE_180,
                        Image.Transpose.ROTATE_270,
                    )[turn - 1]
                )
        elif kind == b"imir":
            # As libheif reads it: axis 1 swaps left and right, axis 0 top and bottom.
            transposes.append(
                Image.Transpose.FLIP_LEFT_RIGHT
                if payload[0] & 1
                else Image.Transpose.FLIP_TOP_BOTTOM
            )
    return crop, tuple(transposes)


# -- one tile as a HEIF file of its own ---------------------------------------------------


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big"), *parts)


def _single_image_file(item: _Item, data: bytes, shared: tuple[bytes, ...]) -> bytes:
    """A minimal HEIF file whose primary image is this coded item and its coding
    properties (hvcC, ispe, colr, pixi...), without the transforms of the whole photo."""
    properties = [p for p in item.properties if p[4:8] not in _TRANSFORMS]
    own = {p[4:8] for p in properties}
    properties += [p for p in shared if p[4:8] not in own]
    ftyp = _box(b"ftyp", b"heic", b"\0\0\0\0", b"mif1heic")
    hdlr = _full(b"hdlr", 0, 0, b"\0\0\0\0pict", b"\0" * 12, b"\0")
    pitm = _full(b"pitm", 0, 0, struct.pack(">H", 1))
    infe = _full(b"infe", 2, 0, struct.pack(">HH", 1, 0), b"hvc1", b"\0")
    iinf = _full(b"iinf", 0, 0, struct.pack(">H", 1), infe)
    ipco = _box(b"ipco", *properties)
    links = bytes(0x80 | i for i in range(1, len(properties) + 1))
    ipma = _full(b"ipma", 0, 0, struct.pack(">IHB", 1, 1, len(properties)), links)
    iprp = _box(b"iprp", ipco, ipma)

    def meta(offset: int) -> bytes:
        iloc = _full(
            b"iloc",
            0,
            0,
            bytes([0x44, 0x00]),
            struct.pack(">HHHHII", 1, 1, 0, 1, offset, len(data)),
        )
        return _full(b"meta", 0, 0, hdlr, pitm, iloc, iinf, iprp)

    offset = len(ftyp) + len(meta(0)) + 8  # the iloc has the same size whatever the offset
    return ftyp + meta(offset) + _box(b"mdat", data)
