"""PNG, TIFF and WebP, through libvips: it streams a PNG or TIFF from the file to the small
size a few hundred rows at a time and decodes a WebP straight at reduced scale, where Pillow
holds every pixel at 4 bytes each (a 100 MP PNG: 0.1 GB here, 0.4 GB in Pillow; a 24 MP
WebP: 11 MB, 0.4 GB; measured in bench/formats.py)."""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from pipeline.media.decoding import damaged, tone_map, upright
from pipeline.media.formats import ImageError, StrPath, one_line

FORMATS = {".png": "PNG", ".tif": "TIFF", ".webp": "WEBP"}
_LOADERS = {"PNG": "pngload", "TIFF": "tiffload", "WEBP": "webpload"}
# libvips shrinks a band of this many source rows at a time (measured: 1,600-2,400 rows
# for 4,000-40,000 px wide images), so that band, not the image, is what a decode holds.
_BAND_ROWS = 2048
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
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
        orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        self.transposes = upright(orientation)
        # An interlaced (Adam7) PNG can only be decoded whole.
        self._whole = fmt == "PNG" and _png_interlaced(self.path)
        # thumbnail casts float samples to 8 bits as they are (0..1 would all be black).
        self._float = header.format in ("float", "double")

    def plan(self, size: tuple[int, int]) -> int:
        width, height = self.size
        return width * (height if self._whole else min(height, _BAND_ROWS))

    def decode(self, size: tuple[int, int]) -> Image.Image:
        pyvips = _pyvips()
        try:
            if self._float:
                im = self._load(self.path, access="sequential", fail_on="truncated")
                im = im.resize(size[0] / im.width, vscale=size[1] / im.height, kernel="linear")
                return _to_pillow(im)
            im = pyvips.Image.thumbnail(
                self.path,
                size[0],
                height=size[1],
                size="force",  # exactly `size`: its aspect is the full-size one
                no_rotate=True,  # orientation is applied by the caller, like every format
                fail_on="truncated",  # not a grey lower half, as libvips would otherwise give
            )
            return _to_pillow(im)
        except pyvips.Error as e:
            raise _error(self.path, self.format, e) from None

    def close(self) -> None:
        pass


def _to_pillow(im: Any) -> Image.Image:
    """The small result as a Pillow image in a plain mode, 8 bits a sample."""
    im = im.copy_memory()  # decode once: the file is read sequentially, only one pass works
    if im.interpretation in _COLOUR_SPACES:
        im = im.colourspace("srgb")
    if im.bands > 4 or im.bands == 3 and im.hasalpha():
        im = im.extract_band(0, n=4 if im.hasalpha() else 3)
    if im.format != "uchar":
        scale, offset = tone_map(im.min(), im.max(), im.format in ("float", "double"))
        im = (im * scale + offset).cast("uchar")
    mode = _MODES[im.bands]
    return Image.frombytes(mode, (im.width, im.height), im.write_to_memory())


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
