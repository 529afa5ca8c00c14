"""Photos Pillow decodes: JPEG (drafted at 1/2-1/8 scale, or the camera's own preview),
and the formats that are small or rare enough to read whole (GIF, BMP, AVIF, JPEG XL,
JPEG 2000)."""

from __future__ import annotations

import struct

from PIL import Image, UnidentifiedImageError

from pipeline.media.decoding import to_plain_mode, upright
from pipeline.media.formats import ImageError, StrPath, one_line, open_formats

_ORIENTATION_TAG = 0x0112

# Decoders signal damage with a zoo of exception types.
DAMAGE = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    RuntimeError,
    struct.error,
)


_PLUGINS = {".jpg": ["JPEG"], ".gif": ["GIF"], ".avif": ["AVIF"], ".jxl": ["JXL"]}


def open_source(path: StrPath, kind: str | None) -> PillowSource:
    """`kind`: the sniffed extension; only that format's plugin may open the file (so
    pillow-heif, once loaded, never takes an AVIF it cannot decode)."""
    formats = _PLUGINS.get(kind or "") or [f for f in open_formats() if f != "HEIF"]
    return PillowSource(path, _open(path, formats))


class PillowSource:
    def __init__(self, path: StrPath, im: Image.Image) -> None:
        self.path = path
        self.im = im
        self.format = "JPEG" if im.format == "MPO" else str(im.format)
        self.size = im.size
        self.transposes = upright(_orientation(im))
        self._preview = False
        self._box: tuple[float, ...] | None = None

    def plan(self, size: tuple[int, int]) -> int:
        if self.format != "JPEG":
            # Read whole, then converted to RGB at full size (a 24 MP GIF: 133 MB).
            return 2 * self.size[0] * self.size[1]
        if self.size == size:
            return size[0] * size[1]
        self._preview = _seek_preview(self.im, size)
        # A JPEG can decode at 1/2, 1/4 or 1/8 scale almost for free; asking for the final
        # size makes Pillow pick the smallest scale that is still >= it (a 6000x4000 photo
        # decodes at 1500x1000, 16x fewer pixels).
        self._box = _draft(self.im, size)
        return self.im.width * self.im.height

    def decode(self, size: tuple[int, int]) -> Image.Image:
        try:
            return _shrink(self.im, size, self._box)
        except DAMAGE:
            if not self._preview:
                raise
        # A damaged preview; the photo itself may be fine. Opened afresh: a JPEG drafted
        # once (the preview) ignores a second draft() at full size.
        with _open(self.path, ["JPEG"]) as photo:
            return _shrink(photo, size, _draft(photo, size))

    def close(self) -> None:
        self.im.close()


def _open(path: StrPath, formats: list[str]) -> Image.Image:
    try:
        return Image.open(path, formats=formats)
    except UnidentifiedImageError:
        raise ImageError("not an image") from None
    except DAMAGE as e:
        # Pillow reports a broken header this way (and OSError covers unreadable files);
        # pillow-heif and pillow-jxl raise RuntimeError for theirs.
        reason = one_line(e)
        if isinstance(e, RuntimeError):  # libjxl's "Generic Error. Please build libjxl..."
            reason = reason.split(". ", 1)[0]
        raise ImageError(f"unreadable image: {reason}") from None


def _draft(im: Image.Image, size: tuple[int, int]) -> tuple[float, ...] | None:
    """`box`: the exact source area in the drafted image, when draft() reduced it."""
    drafted = im.draft("RGB", size) if im.size != size else None
    return drafted[1] if drafted is not None else None


def _seek_preview(im: Image.Image, size: tuple[int, int]) -> bool:
    """Move `im` to the camera's own downscaled copy of the photo when it has one that is
    at least `size`: most camera makers store a "Large Thumbnail" of up to 1920x1080 in the
    JPEG's Multi-Picture (MPF) index. A 10 MB 24 MP photo costs ~120 ms of entropy decoding
    here even at 1/8 scale; its 1616x1080 preview decodes in ~10 ms.

    Only frames the index calls a Large Thumbnail count (never a stereo view, a panorama
    part or an HDR gain map), and only with the photo's exact shape, so a preview that was
    stored rotated or cropped is not used. Returns False, on the photo itself, otherwise.
    """
    entries = (getattr(im, "mpinfo", None) or {}).get(0xB002) or []
    width, height = im.size
    best: tuple[int, int] | None = None  # (pixels, frame)
    looked = False
    for frame, entry in enumerate(entries[1:], start=1):
        attribute = entry.get("Attribute") or {}
        if not str(attribute.get("MPType", "")).startswith("Large Thumbnail"):
            continue
        looked = True
        try:
            im.seek(frame)  # reads the frame's header only
        except (*DAMAGE, Image.DecompressionBombError):
            continue
        w, h = im.size
        same_shape = abs(w * height - h * width) <= 0.01 * width * h
        if same_shape and w >= size[0] and h >= size[1] and (best is None or w * h < best[0]):
            best = (w * h, frame)
    if looked:
        im.seek(best[1] if best else 0)  # also resets a frame that failed half-way
    return best is not None


def _shrink(im: Image.Image, size: tuple[int, int], box: tuple[float, ...] | None) -> Image.Image:
    """Decode `im` (drafted or not) and bring it to `size` in a plain mode."""
    im.load()
    im = to_plain_mode(im)
    if im.size != size:
        # After a draft the factor left is < 2 and the DCT scaling has already filtered, so
        # area averaging (BOX) looks like LANCZOS (within 1.6/255 on average on the corpus
        # photos) at a third of its cost: 13 ms instead of 18 for HAMMING, 49 for LANCZOS.
        # reducing_gap: a cheap integer reduce() first when the factor left is still large.
        im = im.resize(size, Image.Resampling.BOX, box=box, reducing_gap=3.0)
    return im


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # Pillow's EXIF parser can fail many ways on garbage; upright it is.
        return 1
    return value if isinstance(value, int) else 1
