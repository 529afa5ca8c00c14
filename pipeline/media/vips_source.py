"""PNG, TIFF and WebP, through libvips, which streams them: a PNG or TIFF is read a few
rows at a time and each row is shrunk across, then every k rows averaged into one, so a
decode holds ~2 KB per column of the photo, not the photo; a WebP is decoded at reduced
scale by libwebp itself. Pillow holds every pixel at 4 bytes (a 100 MP PNG: ~30 MB here,
~400 MB in Pillow; a 24 MP WebP: ~10 MB against ~390 MB; bench/formats.py).

Not libvips' own `thumbnail`: it shrinks rows down first and holds ~2,000 of them (85 MB
for the 100 MP PNG). What is left after the integer shrink, a factor under 2, is done in
Pillow with the same area averaging as a drafted JPEG.
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from pipeline.media.decoding import damaged, tone_map, upright
from pipeline.media.formats import ImageError, StrPath, one_line

FORMATS = {".png": "PNG", ".tif": "TIFF", ".webp": "WEBP"}
_LOADERS = {"PNG": "pngload", "TIFF": "tiffload", "WEBP": "webpload"}
# What streaming holds per column of the photo, in pixels of 4 bytes (measured: 28 MB for
# 12,500 columns, 84 MB for 40,000, i.e. ~2.1 KB each).
_PER_COLUMN = 560
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
# Decoding work and row buffers grow with the bytes of a pixel, not just the pixels: a TIFF
# of 6000x6000 claiming 263 samples a pixel took 16 s and 1.8 GB. Photos have at most RGBA
# and a few extra channels; a decode reads at most 300 MP of RGBA's worth of bytes.
_MAX_BANDS = 8
_MAX_BYTES = 1_200_000_000
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4,
                 "float": 4, "complex": 8, "double": 8, "dpcomplex": 16}  # fmt: skip
_COLOUR_SPACES = {"lab", "labq", "labs", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv", "cmyk"}

_ready = threading.Lock()
_vips: Any = None


def _pyvips() -> Any:
    """Import pyvips on the first photo that needs it (a text-only run never loads libvips)."""
    global _vips
    with _ready:
        if _vips is None:
            try:
                import pyvips  # type: ignore[import-untyped]
            except (ImportError, OSError) as e:
                raise ImageError(f"libvips is missing (pip install pyvips-binary): {e}") from None
            pyvips.cache_set_max(0)  # no cache of whole operations: each photo is seen once
            # pipe hands libvips only files whose first bytes say PNG, TIFF or WebP; and
            # its loaders not meant for untrusted files are off in case one still matches.
            pyvips.block_untrusted_set(True)
            _vips = pyvips
    return _vips


def open_source(path: StrPath, fmt: str) -> VipsSource:
    return VipsSource(path, fmt)


class VipsSource:
    def __init__(self, path: StrPath, fmt: str) -> None:
        pyvips = _pyvips()
        self.path = str(path)
        self.format = fmt
        self._load = getattr(pyvips.Image, _LOADERS[fmt])
        try:
            header = self._load(self.path, access="sequential")  # reads the header only
        except pyvips.Error as e:
            raise _error(self.path, fmt, e) from None
        self.size = (header.width, header.height)
        self._pixel_bytes = header.bands * _SAMPLE_BYTES.get(header.format, 8)
        _check_work(fmt, header.width, header.height, header.bands, self._pixel_bytes)
        orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        self.transposes = upright(orientation)
        # An interlaced (Adam7) PNG can only be decoded whole.
        self._whole = fmt == "PNG" and _png_interlaced(self.path)

    def plan(self, size: tuple[int, int]) -> int:
        width, height = self.size
        k = _factor(self.size, size)
        shrunk = -(-width // k) * -(-height // k)
        held = width * height if self._whole else width * _PER_COLUMN
        # Measured for RGB of 8 bits: a pixel of more bytes holds that much more.
        return shrunk + held * max(3, self._pixel_bytes) // 3

    def decode(self, size: tuple[int, int]) -> Image.Image:
        pyvips = _pyvips()
        width, height = self.size
        k = _factor(self.size, size)
        try:
            # fail_on: a cut-short file is an error, not a photo with a grey lower half.
            if self.format == "WEBP":
                im = self._load(self.path, fail_on="truncated", scale=1 / k)
                im = _on_white(im)
            else:
                im = _on_white(self._load(self.path, access="sequential", fail_on="truncated"))
                if k > 1:  # across first: each row is shrunk before any row is kept
                    im = im.shrinkh(k, ceil=True).shrinkv(k, ceil=True)
            shrunk = _to_pillow(im.copy_memory())  # the one pass over the file
        except pyvips.Error as e:
            raise _error(self.path, self.format, e) from None
        if shrunk.size == size:
            return shrunk
        # ceil=True made a last, partial block of pixels: it holds width % k columns only.
        box = (0.0, 0.0, min(shrunk.width, width / k), min(shrunk.height, height / k))
        return shrunk.resize(size, Image.Resampling.BOX, box=box)

    def close(self) -> None:
        pass


def _check_work(fmt: str, width: int, height: int, bands: int, pixel_bytes: int) -> None:
    """Refuse from the header a photo whose decode is more work than any photo's."""
    if bands > _MAX_BANDS:
        raise ImageError(f"{fmt} of {bands} samples a pixel: no photo has more than {_MAX_BANDS}")
    if width * height * pixel_bytes > _MAX_BYTES:
        raise ImageError(
            f"image too large: a {width}x{height} {fmt} of {pixel_bytes} bytes a pixel is "
            f"{width * height * pixel_bytes / 1e9:.1f} GB to decode (the limit is "
            f"{_MAX_BYTES / 1e9:.1f} GB)"
        )


def _factor(full: tuple[int, int], size: tuple[int, int]) -> int:
    """The integer shrink that leaves the photo at least `size`."""
    return max(1, min(full[0] // size[0], full[1] // size[1]))


def _on_white(im: Any) -> Any:
    """Composite alpha onto white before shrinking, as if the photo had been flattened whole
    (averaging colours under transparent pixels would fringe the edges)."""
    if not im.hasalpha():
        return im
    white = 65535 if im.interpretation in ("rgb16", "grey16") else 255
    return im.flatten(background=[white] * (im.bands - 1))


def _to_pillow(im: Any) -> Image.Image:
    """A small image in memory as a Pillow image: RGB, L, RGBA or LA, 8 bits a sample."""
    if im.interpretation in _COLOUR_SPACES:
        im = im.colourspace("srgb")
    if im.bands not in _MODES:  # extra samples a TIFF may carry beyond its colours
        im = im.extract_band(0, n=3)
    if im.format != "uchar":
        scale, offset = tone_map(im.min(), im.max(), im.format in ("float", "double"))
        im = (im * scale + offset).cast("uchar")
    return Image.frombytes(_MODES[im.bands], (im.width, im.height), im.write_to_memory())


def _error(path: str, fmt: str, error: Exception) -> ImageError:
    # libvips' first message, without the loader name it starts with.
    lines = [line.split(": ", 1)[-1] for line in str(error).splitlines()[1:] if line.strip()]
    reason = one_line(Exception(lines[0] if lines else str(error)))
    if _ends_early(path, fmt):
        reason = f"the file ends early ({reason})"
    return damaged(fmt, reason)


def _png_interlaced(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            header = f.read(29)  # signature, IHDR length and type, then its 13 bytes
    except OSError:
        return False
    return len(header) == 29 and header[28] == 1


def _ends_early(path: str, fmt: str) -> bool:
    """Whether the file is shorter than its own structure says (libvips only says "read
    error"): a PNG must end with IEND, a WebP is as long as its RIFF header says."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 12))
            tail = f.read()
    except OSError:
        return False
    if fmt == "PNG":
        return tail[4:8] != b"IEND"
    if fmt == "WEBP":
        return int.from_bytes(head[4:8], "little") + 8 > size
    return False
