"""pipe's fields (caption, keywords) written into a photo's own XMP, and IPTC where the
format carries it, through a checked copy beside the photo: `embed(path, fields)` gives the
copy to rename over the photo, or says in one line (`EmbedError`) why the photo is refused.

`formats.py` decides which formats (the table; a new one is a `Writable` row once exiv2
writes it and libvips decodes it), `iptc.py` sets IPTC IIM, `pixels.py` compares decoded
pixels, `write.py` copies, writes and checks. exiv2 and libvips load on first use."""

from __future__ import annotations

from pipeline.media.embedding.formats import REFUSED, WRITABLE, EmbedError, Writable, writable
from pipeline.media.embedding.write import Embedded, Original, embed, holds

__all__ = [
    "REFUSED",
    "WRITABLE",
    "EmbedError",
    "Embedded",
    "Original",
    "Writable",
    "embed",
    "holds",
    "writable",
]
