"""Whether two files decode to the same pixels, compared in one libvips pipeline that
streams both (a few rows of each at a time), so a 100 MP photo is never held twice.
Every page of a multi-page TIFF and every frame of an animated WebP is compared."""

from __future__ import annotations

from typing import Any

from pipeline.media.embedding.formats import EmbedError
from pipeline.media.formats import one_line
from pipeline.media.vips_source import _pyvips


def check_same_pixels(original: str, written: str, pages: bool) -> None:
    """Raise EmbedError unless `written` decodes to exactly `original`'s pixels."""
    vips = _pyvips()
    try:
        count = _pages(vips, original) if pages else 1
        if pages and _pages(vips, written) != count:
            raise EmbedError("the written file has another number of pages; not replacing")
        for page in range(count):
            a, b = _open(vips, original, page, pages), _open(vips, written, page, pages)
            if _shape(a) != _shape(b):
                raise EmbedError("the written file's pixels differ in size; not replacing")
            # 255 in some band where the two differ; max() streams both decodes.
            if (a != b).max() != 0:
                raise EmbedError("the written file's pixels differ; not replacing")
    except vips.Error as e:
        raise EmbedError(f"cannot decode the photo to check its pixels: {one_line(e)}") from None


def _open(vips: Any, path: str, page: int, pages: bool) -> Any:
    extra = {"page": page} if pages else {}
    return vips.Image.new_from_file(path, access="sequential", **extra)


def _pages(vips: Any, path: str) -> int:
    image = vips.Image.new_from_file(path, access="sequential")
    return int(image.get("n-pages")) if image.get_typeof("n-pages") else 1


def _shape(image: Any) -> tuple[Any, ...]:
    return (image.width, image.height, image.bands, image.format, image.interpretation)
