"""Hostile images made from crafted headers: small on disk, huge or slow when decoded.

Each maker writes one file and returns its path. The cheap ones (a few KB, made in
milliseconds) are for the end-to-end tests; `bench/hostile.py` also makes the big ones the
issue measured (an 875 KB PNG of 6,000,000 x 50) and checks pipe's peak RSS and CPU on them.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from tests.fakes.sd import FakeSd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _zeros(total: int, level: int = 9) -> bytes:
    """`total` zero bytes, deflated (about 1,000 to 1 at level 9), made a MB at a time."""
    z = zlib.compressobj(level)
    block = bytes(1 << 20)
    parts = []
    for _ in range(total >> 20):
        parts.append(z.compress(block))
    parts.append(z.compress(bytes(total & ((1 << 20) - 1))))
    parts.append(z.flush())
    return b"".join(parts)


def png_header(width: int, height: int, colour: int = 2) -> bytes:
    """Signature and IHDR: 8 bits a sample, RGB (2) unless told, not interlaced."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr)


def png(path: Path, width: int, height: int, *, whole: bool = True) -> Path:
    """An RGB PNG of black rows. `whole=False`: a few rows' data then IEND (a bomb whose
    header alone makes decoders allocate)."""
    row = 1 + 3 * width  # filter byte, then the samples
    data = _zeros(row * height) if whole else _zeros(1000)
    path.write_bytes(png_header(width, height) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def _ifd(entries: list[tuple[int, int, int, int]], order: str = "<") -> bytes:
    """An IFD at offset 8: (tag, type, count, value) entries, sorted, values inline."""
    entries = sorted(entries)
    out = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        inline = kind == 3 and count == 1  # else a LONG, or an offset to the values
        packed = struct.pack(order + ("H2x" if inline else "I"), value)
        out += struct.pack(order + "HHI", tag, kind, count) + packed
    return out + struct.pack(order + "I", 0)


def tiff(path: Path, width: int, height: int, *, samples: int = 3) -> Path:
    """A deflated TIFF of black pixels, one strip a row (`samples` samples of 8 bits)."""
    row = zlib.compress(bytes(width * samples), 9)
    n_entries = 11
    ifd_size = 2 + 12 * n_entries + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * height
    bits_at = counts_at + 4 * height
    data_at = bits_at + 2 * samples
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, samples, bits_at) if samples > 2 else (258, 3, 1, 8),
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 2 if samples >= 3 else 1),
        (273, 4, height, offsets_at),
        (277, 3, 1, samples),
        (278, 4, 1, 1),
        (279, 4, height, counts_at),
        (284, 3, 1, 1),
        (338, 3, 1, 0) if samples in (2, 4) else (339, 3, 1, 1),
    ]
    if samples > 2:  # BitsPerSample holds more than fits inline: a pointer instead
        entries[2] = (258, 3, samples, bits_at)
    ifd = _ifd(entries)
    assert len(ifd) == ifd_size
    offsets = b"".join(struct.pack("<I", data_at + i * len(row)) for i in range(height))
    counts = struct.pack("<I", len(row)) * height
    bits = struct.pack("<H", 8) * samples
    head = b"II*\x00" + struct.pack("<I", 8)
    path.write_bytes(head + ifd + offsets + counts + bits + row * height)
    return path


def tiff_many_samples(
    path: Path, width: int = 1048624, height: int = 64, samples: int = 263
) -> Path:
    """A few hundred bytes: one uncompressed strip whose samples per pixel no photo has."""
    ifd = _ifd(
        [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, 1, 8 + 2 + 12 * 9 + 4),
            (277, 3, 1, samples),
            (278, 4, 1, height),
            (279, 4, 1, 16),
        ]
    )
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(16))
    return path


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, *parts: bytes) -> bytes:
    return _box(kind, bytes([version, 0, 0, 0]), *parts)


def heic_grid(path: Path, columns: int, rows: int, tile: int = 64) -> Path:
    """A HEIC whose primary image is a grid of columns x rows tiles of `tile` px, every tile
    the same coded bytes (so the file stays small however many tiles it claims)."""
    import pillow_heif

    from pipeline.media import heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (tile, tile), (40, 90, 160))).save(buf, quality=30)
    one = path.with_suffix(".one.heic")
    one.write_bytes(buf.getvalue())
    layout = heif.read_layout(one)
    one.unlink()
    coded = layout.items[layout.tiles[0]]
    start, length = coded.place.extents[0]
    data = buf.getvalue()[start : start + length]
    props = [p for p in coded.properties if p[4:8] in (b"hvcC", b"ispe")]
    n = columns * rows
    grid_id, first = 1, 2
    ids = range(first, first + n)
    grid = bytes([0, 0, rows - 1, columns - 1]) + struct.pack(">HH", columns * tile, rows * tile)
    infe = [_full(b"infe", 2, struct.pack(">HH", grid_id, 0), b"grid", b"\0")]
    infe += [_full(b"infe", 2, struct.pack(">HH", i, 0), b"hvc1", b"\0") for i in ids]
    iinf = _full(b"iinf", 0, struct.pack(">H", len(infe)), *infe)
    dimg = _box(b"dimg", struct.pack(">HH", grid_id, n), *(struct.pack(">H", i) for i in ids))
    iref = _full(b"iref", 0, dimg)
    ispe_grid = _full(b"ispe", 0, struct.pack(">II", columns * tile, rows * tile))
    ipco = _box(b"ipco", *props, ispe_grid)  # 1, 2: the tile's hvcC and ispe; 3: the grid's
    assoc = [struct.pack(">HB", grid_id, 1) + bytes([3])]
    assoc += [struct.pack(">HB", i, 2) + bytes([0x81, 2]) for i in ids]
    ipma = _full(b"ipma", 0, struct.pack(">I", len(assoc)), *assoc)
    iprp = _box(b"iprp", ipco, ipma)
    hdlr = _full(b"hdlr", 0, b"\0\0\0\0pict", bytes(12), b"\0")
    pitm = _full(b"pitm", 0, struct.pack(">H", grid_id))
    idat = _box(b"idat", grid)
    ftyp = _box(b"ftyp", b"heic", b"\0\0\0\0", b"mif1heic")

    def meta(offset: int) -> bytes:
        # iloc v1: offset and length 4 bytes, base offset 0, index 0; construction method.
        locs = [struct.pack(">HHHH", grid_id, 1, 0, 1) + struct.pack(">II", 0, len(grid))]
        locs += [
            struct.pack(">HHHH", i, 0, 0, 1) + struct.pack(">II", offset, len(data)) for i in ids
        ]
        iloc = _full(b"iloc", 1, bytes([0x44, 0x00]), struct.pack(">H", len(locs)), *locs)
        return _full(b"meta", 0, hdlr, pitm, iloc, iinf, iref, iprp, idat)

    offset = len(ftyp) + len(meta(0)) + 8
    path.write_bytes(ftyp + meta(offset) + _box(b"mdat", data))
    return path


def jxl_garbage(path: Path) -> Path:
    """A JPEG XL signature and nothing else: pillow-jxl raises RuntimeError."""
    path.write_bytes(b"\xff\x0a")
    return path


def sd_png(width: int, height: int) -> bytes:
    """What a hostile image server may answer: a whole PNG far bigger than was asked for."""
    with io.BytesIO() as buf:
        Image.new("RGB", (width, height)).save(buf, "PNG", compress_level=9)
        return buf.getvalue()


class OversizeSd(FakeSd):
    """Answers every draw with a PNG far bigger than asked (a crafted header would do: the
    answer must be refused before it is decoded)."""

    def __init__(self, size: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answer = png_header(*size) + b"\0" * 64  # bench: a whole PNG

    def generate(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        _, settings = super().generate(params)
        return base64.b64encode(self.answer).decode(), settings
