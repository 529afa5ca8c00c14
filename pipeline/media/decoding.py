"""What every decoder gives `prepare_image`, and the pixel rules they share.

A decoder opens a photo reading only its header (size, orientation, what decoding will
cost), then decodes it straight to the size asked for, as stored (not yet upright), in one
of the plain modes RGB, L, RGBA or LA.
"""

from __future__ import annotations

import re
from typing import Protocol

from PIL import Image

from pipeline.media.formats import ImageError

# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = {
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
}


class Source(Protocol):
    format: str  # what the content really is, e.g. "PNG"
    size: tuple[int, int]  # as stored
    transposes: tuple[Image.Transpose, ...]  # stored -> upright, applied in order

    def plan(self, size: tuple[int, int]) -> int:
        """Get ready to decode at `size`; returns the pixels the decode will hold at once."""
        ...

    def decode(self, size: tuple[int, int]) -> Image.Image:
        """The image at exactly `size`, as stored, in mode RGB, L, RGBA or LA."""
        ...

    def close(self) -> None: ...


_TRUNCATED = re.compile(r"truncat|premature|ends early|unexpected end|end of (file|data)", re.I)


def damaged(fmt: str, reason: str) -> ImageError:
    """'truncated PNG: ...' when the decoder's reason says the file ends early (a copy cut
    short, worth copying again), else 'corrupt PNG: ...'."""
    return ImageError(f"{'truncated' if _TRUNCATED.search(reason) else 'corrupt'} {fmt}: {reason}")


def upright(orientation: int) -> tuple[Image.Transpose, ...]:
    return (UPRIGHT[orientation],) if orientation in UPRIGHT else ()


def turned(transposes: tuple[Image.Transpose, ...]) -> bool:
    """Whether the photo displays sideways to how it is stored."""
    return sum(t in _QUARTER_TURNS for t in transposes) % 2 == 1


def tone_map(low: float, high: float, is_float: bool) -> tuple[float, float]:
    """(scale, offset) that bring samples of more than 8 bits to 0..255: the real range of
    the format, not clipping at 255 (16-bit scans stay their own tones)."""
    if low < 0 and high > low:
        return 255 / (high - low), -low * 255 / (high - low)
    if is_float and high <= 1.0:
        return 255.0, 0.0  # float images in 0..1
    if high <= 255:
        return 1.0, 0.0
    if high <= 65535:
        return 255 / 65535, 0.0  # 16-bit samples, whatever bit depth the sensor filled
    return 255 / high, 0.0


def to_plain_mode(im: Image.Image) -> Image.Image:
    """RGB, L, RGBA or LA: modes that resize correctly and flatten simply."""
    mode = im.mode
    transparent = "transparency" in im.info  # palette index or tRNS colour, not a channel
    if mode in ("RGBA", "LA"):
        return im
    if mode in ("RGB", "L"):
        return im.convert({"RGB": "RGBA", "L": "LA"}[mode]) if transparent else im
    if mode in ("P", "PA"):
        return im.convert("RGBA" if transparent or mode == "PA" else "RGB")
    if mode in ("RGBa", "La"):  # premultiplied alpha
        return im.convert(mode.upper())
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        im = im if mode == "F" else im.convert("I")
        low, high = im.getextrema()  # type: ignore[misc]
        scale, offset = tone_map(low, high, mode == "F")
        return im.point(lambda v: v * scale + offset).convert("L")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def flatten(im: Image.Image) -> Image.Image:
    """Composite any alpha onto white (models read transparent black as a black photo)."""
    if im.mode in ("RGBA", "LA"):
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGB"), mask=im.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")
