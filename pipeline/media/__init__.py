"""Images: what a file is (`formats`), a small upright JPEG for the model (`images`), and
the EXIF fields for names (`exif`)."""

from pipeline.media.exif import BLANK, Metadata, read_metadata
from pipeline.media.formats import ImageError, image_extension, named_as, real_extension
from pipeline.media.images import PreparedImage, prepare_image

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
