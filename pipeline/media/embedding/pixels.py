"""Whether two files decode to the same pixels, compared in one libvips pipeline that
streams both (a few rows of each at a time), so a 100 MP photo is never held twice.
Every page of a multi-page TIFF and every frame of an animated WebP is compared, and the
pictures a camera stores after a JPEG's own (MPO: a large preview) through Pillow, one
at a time: libvips reads only the first."""

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
    _check_later_pictures(original, written)


def _check_later_pictures(original: str, written: str) -> None:
    """A multi-picture JPEG's pictures after the first, each the same once decoded."""
    from PIL import Image

    from pipeline.media.formats import open_formats

    try:
        with Image.open(original, formats=open_formats()) as a:
            if a.format != "MPO":
                return
            with Image.open(written, formats=["JPEG"]) as b:
                if getattr(b, "n_frames", 1) != a.n_frames:
                    raise EmbedError("the written file lost pictures stored after the photo")
                for frame in range(1, a.n_frames):
                    a.seek(frame)
                    b.seek(frame)
                    if (a.size, a.mode) != (b.size, b.mode) or a.tobytes() != b.tobytes():
                        raise EmbedError("a picture stored after the photo differs; not replacing")
    except (OSError, ValueError, SyntaxError) as e:
        raise EmbedError(f"cannot decode the pictures after the photo: {one_line(e)}") from None


def _open(vips: Any, path: str, page: int, pages: bool) -> Any:
    extra = {"page": page} if pages else {}
    return vips.Image.new_from_file(path, access="sequential", **extra)


def _pages(vips: Any, path: str) -> int:
    image = vips.Image.new_from_file(path, access="sequential")
    return int(image.get("n-pages")) if image.get_typeof("n-pages") else 1


def _shape(image: Any) -> tuple[Any, ...]:
    return (image.width, image.height, image.bands, image.format, image.interpretation)
