"""Photos in, model-ready JPEGs out.

`prepare_image` turns a photo into a small, upright RGB JPEG for a vision model without
ever holding a big photo's pixels at full size where its format allows: each format has
one decoder (`pillow_source` for JPEG, GIF, BMP, AVIF, JPEG XL and JPEG 2000; `vips_source`
for PNG, TIFF and WebP; `heif` for HEIC), and every decode takes its pixels from the shared
`budget` first.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, features

from pipeline.media import heif, pillow_source, vips_source
from pipeline.media.allocator import return_big_buffers
from pipeline.media.budget import DECODING, MAX_COST, PixelBudget
from pipeline.media.decoding import Source, damaged, flatten, turned
from pipeline.media.formats import (
    ImageError,
    StrPath,
    check_file,
    extension_of,
    one_line,
    register_jxl,
    sniff,
)
from pipeline.media.jpeg import check_jpeg

# The decompression-bomb line: a photo of more pixels is refused from its header, before
# anything is decoded. Phones stitch 60-100 MP panoramas, cameras and stitchers 200 MP and
# more; past 300 MP it is no photo to describe but a bomb, or a scan for other tools.
MAX_PIXELS = 300_000_000

# Pillow refuses (past 2x its limit) or warns about big images on its own; the line above is
# ours, so Pillow's must never be the lower one, and its warning would only print noise over
# the progress bar.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes  # RGB JPEG, long side <= max_side, already upright (no EXIF)
    width: int
    height: int
    original_width: int  # as displayed, i.e. after EXIF orientation
    original_height: int
    format: str  # what the content really is, whatever the file is called
    extension: str  # canonical extension for that content, e.g. ".png"


def prepare_image(
    path: StrPath, max_side: int = 1024, quality: int = 85, budget: PixelBudget = DECODING
) -> PreparedImage:
    """Read any supported photo and return it as an upright RGB JPEG of long side <= max_side.

    Raises ImageError with a one-line reason for anything that is not a readable image.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    check_file(path)
    return_big_buffers()
    source = _open(path)
    try:
        width, height = source.size
        check_pixels(width, height)
        scale = min(1.0, max_side / max(width, height))
        # Aspect from the full-size dimensions, not from rounded reduced ones.
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        cost = source.plan(size)
        check_cost(source.format, width, height, cost)
        try:
            with budget.use(cost):
                im = source.decode(size)
        except MemoryError:
            raise ImageError(f"out of memory decoding {width}x{height}") from None
        except pillow_source.DAMAGE as e:
            raise damaged(source.format, one_line(e)) from None
        # Rotating after resizing moves a fraction of the pixels.
        for transpose in source.transposes:
            im = im.transpose(transpose)
        buf = io.BytesIO()
        # optimize=False: the extra Huffman pass costs time and saves only a few percent.
        flatten(im).save(buf, "JPEG", quality=quality, optimize=False)
    finally:
        source.close()  # after encoding: an image decoded at its own size is still the file
    if turned(source.transposes):  # displayed sideways to how it is stored
        width, height, size = height, width, (size[1], size[0])
    return PreparedImage(
        jpeg=buf.getvalue(),
        width=size[0],
        height=size[1],
        original_width=width,
        original_height=height,
        format=source.format,
        extension=extension_of(source.format, path),
    )


def check_pixels(width: int, height: int) -> None:
    """Refuse a decompression bomb from its header, naming its size."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"image too large: {width}x{height} = {_mp(width * height)} MP "
            f"(the limit is {_mp(MAX_PIXELS)} MP)"
        )


def check_cost(fmt: str, width: int, height: int, cost: int) -> None:
    """Refuse, before decoding, a photo whose decode would hold more than `MAX_COST`:
    running it alone would let one file (a PNG of 6,000,000x50, whose rows libvips holds
    whole) take gigabytes. Costs are what each decoder holds, so the line falls by shape:
    ~110,000 columns for a streamed PNG or TIFF, 32 MP for a GIF read whole."""
    if cost > MAX_COST:
        raise ImageError(
            f"image too costly to decode: a {width}x{height} {fmt} would need about "
            f"{_mb(cost)} MB to decode (the limit is {_mb(MAX_COST)} MB)"
        )


def _mb(pixels: int) -> str:
    return f"{pixels * 4 / 1e6:,.0f}"  # the budget counts pixels of 4 bytes


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.0f}" if pixels >= 10e6 else f"{pixels / 1e6:.1f}"


def _open(path: StrPath) -> Source:
    """The decoder for what the file really is, whatever it is called."""
    kind = sniff(path)
    if kind == ".heic":
        return heif.open_source(path)
    if kind in vips_source.FORMATS:
        return vips_source.open_source(path, vips_source.FORMATS[kind])
    if kind == ".avif" and not features.check("avif"):
        raise ImageError("AVIF not supported by this Pillow (Pillow 11.3 or later reads it)")
    if kind == ".jxl":
        register_jxl()
    if kind == ".jpg":
        check_jpeg(path)
    try:
        return pillow_source.open_source(path, kind)
    except Image.DecompressionBombError as e:
        # Only past twice our own line (see above): Pillow gives the count, not the sides.
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{_mp(int(found[1]))} MP " if found else ""
        raise ImageError(f"image too large: {pixels}(the limit is {_mp(MAX_PIXELS)} MP)") from None
