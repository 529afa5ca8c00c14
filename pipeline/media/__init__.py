"""Images: what a file is (`formats`), a small upright JPEG for the model (`images`), and
the EXIF fields for names (`exif`).

Each name is imported on first use: `images` brings Pillow (and pyvips when installed), which
a run that decodes no picture (a re-run over a finished folder) must not pay for at start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.media.exif import BLANK, Metadata, read_metadata
    from pipeline.media.formats import ImageError, image_extension, named_as, real_extension
    from pipeline.media.images import PreparedImage, prepare_image

_HOMES = {
    "BLANK": "exif",
    "Metadata": "exif",
    "read_metadata": "exif",
    "ImageError": "formats",
    "image_extension": "formats",
    "named_as": "formats",
    "real_extension": "formats",
    "PreparedImage": "images",
    "prepare_image": "images",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "BLANK",
    "ImageError",
    "Metadata",
    "PreparedImage",
    "image_extension",
    "named_as",
    "prepare_image",
    "read_metadata",
    "real_extension",
]
