"""Which photos pipe writes metadata into, decided from what the file really is (its first
bytes, not its name) and from what exiv2 0.28 can write and pipe can check afterwards.

`ImageFactory.checkMode(type, mdXmp)` says read-write for JPEG, TIFF, PNG and WebP, and
for IPTC only JPEG and TIFF carry it where photo managers read it (exiv2 would put PNG's in
a text chunk few read). Everything else is refused with one line naming a way that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.media.formats import ImageError, StrPath, image_extension


class EmbedError(Exception):
    """A photo pipe will not or could not write into; str() is one line for the user."""


@dataclass(frozen=True)
class Writable:
    """A format pipe writes into: its name, whether IPTC goes in too, whether it can hold
    several pages or frames (each compared after the write)."""

    name: str
    iptc: bool
    pages: bool


WRITABLE = {
    ".jpg": Writable("JPEG", iptc=True, pages=False),
    ".tif": Writable("TIFF", iptc=True, pages=True),
    ".png": Writable("PNG", iptc=False, pages=False),
    ".webp": Writable("WebP", iptc=False, pages=True),
}
SAFER = "use --write xmp"
REFUSED = {
    ".heic": "exiv2 cannot write HEIC safely (its BMFF support is read-only)",
    ".avif": "exiv2 cannot write AVIF safely (its BMFF support is read-only)",
    ".jxl": "exiv2 cannot write JPEG XL (it only reads it)",
    ".gif": "exiv2 cannot write metadata into GIF",
    ".bmp": "BMP holds no XMP or IPTC",
    ".jp2": "pipe cannot check a JPEG 2000's pixels after writing it",
}
RAW = "pipe does not rewrite camera raw files (it cannot check their pixels after a write)"


def writable(path: StrPath) -> Writable:
    """What pipe writes into `path`; EmbedError says why not."""
    try:
        ext = image_extension(path)
    except ImageError as e:
        raise EmbedError(str(e)) from None
    found = WRITABLE.get(ext)
    if found is None:
        # Every other extension `image_extension` gives is a camera raw's own (.nef, .dng).
        raise EmbedError(f"{REFUSED.get(ext, RAW)}; {SAFER}")
    return found
