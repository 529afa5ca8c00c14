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
from typing import BinaryIO, NamedTuple

from PIL import Image

from pipeline.media import isobmff
from pipeline.media.formats import ImageError, StrPath, register_heif
from pipeline.media.isobmff import Damaged

_MAX_META = 16 * 1024 * 1024  # a photo's meta box is a few KB; more is not a photo
_TRANSFORMS = {b"clap", b"irot", b"imir"}
_SHARED = {b"colr", b"pixi"}
_DECODER_PIXELS = 4_000_000
# Each tile is a decoder of its own (~0.35 ms before any pixel): a phone's 48 MP photo has
# 192 tiles, a 200 MP one 768; a grid of 99x99 tiny tiles took 3-12 s. A grid's pixels,
# overhang included, are held to the photo limit too.
_MAX_TILES = 1024
_MAX_TILE_PIXELS = 300_000_000
_CODED = {b"hvc1"}  # HEVC; AV1 ('av01') files are AVIF and go to Pillow


class _Truncated(Damaged):
    pass


def _error(e: Exception) -> ImageError:
    text = " ".join(str(e).split()) or type(e).__name__
    return ImageError(f"{'truncated' if isinstance(e, _Truncated) else 'corrupt'} HEIC: {text}")


_NOWHERE = isobmff.Location(0, 0, ())


@dataclass
class _Item:
    type: bytes = b""
    place: isobmff.Location = _NOWHERE  # where its coded bytes are
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
    except (Damaged, struct.error, IndexError, ValueError, ZeroDivisionError) as e:
        raise _error(e) from None


def decode(path: StrPath, layout: Layout, size: tuple[int, int]) -> Image.Image:
    """The photo at `size` (as stored: before `layout.transposes`), RGB or L."""
    try:
        return _decode(path, layout, size)
    except Damaged as e:
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
        raise Damaged("no tiles")
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
        raise Damaged(str(e)) from None


# -- reading the container -----------------------------------------------------------------


def _top_level_meta(f: BinaryIO) -> bytes:
    """The file's 'meta' box body, read without reading the media data around it."""
    end = f.seek(0, io.SEEK_END)
    for box in isobmff.file_boxes(f, end):
        if box.kind == b"meta":
            if box.end - box.offset > _MAX_META:
                raise Damaged("meta box too large")
            body = isobmff.read_body(f, box, _MAX_META)
            if len(body) < box.end - box.body:
                raise _Truncated("the file ends inside its index")
            return body
    raise Damaged("no meta box")


def _layout(f: BinaryIO) -> Layout:
    index = _index(f)
    item = index.items.get(index.primary)
    if item is None:
        raise Damaged("the primary image is missing")
    tiling = _tiling(f, index, item)
    _check_tiling(tiling)
    crop, transposes = _transforms(item, tiling.width, tiling.height)
    shared = tuple(p for p in item.properties if p[4:8] in _SHARED)
    return Layout(*tiling, crop, transposes, index.items, index.idat, shared)


class _Index(NamedTuple):  # the meta box's index of the photo's items
    primary: int
    items: dict[int, _Item]  # type, place and properties of each
    references: dict[tuple[int, bytes], list[int]]  # (item, type) -> items, as in iref
    idat: bytes  # the idat box: the bytes of items stored in the index itself


def _index(f: BinaryIO) -> _Index:
    meta = _top_level_meta(f)
    children = {box.kind: box for box in isobmff.boxes(meta, 4)}  # a full box: skip 4
    for needed in (b"pitm", b"iinf", b"iloc", b"iprp"):
        if needed not in children:
            raise Damaged(f"no {needed.decode()} box")
    primary = isobmff.primary_item(meta, children[b"pitm"])
    items = {info.id: _Item(info.type) for info in isobmff.items(meta, children[b"iinf"])}
    for place in isobmff.locations(meta, children[b"iloc"]):
        if place.item in items:
            items[place.item].place = place
    for item_id, properties in isobmff.properties(meta, children[b"iprp"], items).items():
        items[item_id].properties = properties
    iref = children.get(b"iref")
    references = isobmff.references(meta, iref) if iref else {}
    idat_box = children.get(b"idat")
    idat = meta[idat_box.body : idat_box.end] if idat_box else b""
    return _Index(primary, items, references, idat)


class _Tiling(NamedTuple):  # the image's size and its grid of tiles, in `Layout`'s order
    width: int
    height: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    tiles: tuple[int, ...]


def _tiling(f: BinaryIO, index: _Index, item: _Item) -> _Tiling:
    """The primary item's grid of tiles, or the item itself as the one tile."""
    if item.type == b"grid":
        tiles = tuple(index.references.get((index.primary, b"dimg"), ()))
        grid = _read_item(f, item, index.idat)
        wide = grid[1] & 1
        rows, columns = grid[2] + 1, grid[3] + 1
        width, height = struct.unpack_from(">II" if wide else ">HH", grid, 4)
        if not tiles or len(tiles) != rows * columns:
            raise Damaged(f"grid of {rows}x{columns} has {len(tiles)} tiles")
        first = index.items.get(tiles[0])
        tile_ispe = _property(first, b"ispe") if first else None
        if tile_ispe is None:
            raise Damaged("a tile has no size")
        tile_width, tile_height = struct.unpack_from(">II", tile_ispe, 12)
        return _Tiling(width, height, columns, rows, tile_width, tile_height, tiles)
    if item.type in _CODED:
        ispe = _property(item, b"ispe")
        if ispe is None:
            raise Damaged("the image has no size")
        width, height = struct.unpack_from(">II", ispe, 12)
        return _Tiling(width, height, 1, 1, width, height, (index.primary,))
    if item.type == b"av01":  # AVIF files say so in their brands; this one does not
        raise ImageError("HEIF with AV1 inside but not marked AVIF: not supported")
    kind = item.type.decode("latin-1")
    raise ImageError(f"HEIC photo: its main image is of type {kind!r}, which pipe cannot read")


def _check_tiling(t: _Tiling) -> None:
    """Refuse sizes no real photo has: zero, tiles short of the image, too many pixels."""
    if min(t.width, t.height, t.tile_width, t.tile_height) <= 0:
        raise Damaged("zero size")
    if t.columns * t.tile_width < t.width or t.rows * t.tile_height < t.height:
        raise Damaged("tiles do not cover the image")
    if t.rows * t.columns > _MAX_TILES:
        raise ImageError(
            f"HEIC photo of {t.columns}x{t.rows} tiles: no photo has more than {_MAX_TILES}"
        )
    if t.rows * t.columns * t.tile_width * t.tile_height > _MAX_TILE_PIXELS:
        raise ImageError(
            f"HEIC photo of {t.columns}x{t.rows} tiles of {t.tile_width}x{t.tile_height}: "
            f"more than {_MAX_TILE_PIXELS // 1_000_000} MP to decode"
        )


def _property(item: _Item, kind: bytes) -> bytes | None:
    return next((p for p in item.properties if p[4:8] == kind), None)


def _read_item(f: BinaryIO, item: _Item, idat: bytes) -> bytes:
    place = item.place
    if place.construction not in (0, 1) and place.extents:
        raise ImageError("HEIC photo: its data is stored in a way pipe cannot read")
    end = f.seek(0, io.SEEK_END)
    data = isobmff.read_item(f, place, idat, end, end)
    if len(data) < place.size or not all(length for _, length in place.extents):
        raise _Truncated("the file ends inside the image data")
    if not place.extents:
        raise Damaged("an image has no data")
    return data


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
