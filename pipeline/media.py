"""Photos in, model-ready JPEGs and template fields out.

`prepare_image` turns any photo Pillow can read into a small, upright RGB JPEG for a vision
model without ever decoding a big JPEG at full size; `read_metadata` pulls the few EXIF fields
the naming templates use ({exif.date}, {exif.camera}, {exif.gps}, ...) and never raises.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import struct
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import exifread
from PIL import Image, UnidentifiedImageError

StrPath = str | os.PathLike[str]

# Only the formats a photo library holds. Letting Pillow try all of its ~40 decoders would
# both widen the attack surface and let random bytes pass as some obscure format.
# (MPO, the multi-picture JPEG of many phones, is opened by the JPEG plugin.)
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "AVIF", "JPEG2000")
_EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "HEIF": ".heic",
    "AVIF": ".avif",
    "JPEG2000": ".jp2",
}
_ALIASES = {".jpg": {".jpeg", ".jpe"}, ".tif": {".tiff"}, ".heic": {".heif"}}
# Camera raw files are TIFF inside; calling a .nef a .tif would be a wrong rename.
_TIFF_RAW = {
    ".3fr", ".arw", ".cr2", ".dcr", ".dng", ".erf", ".iiq", ".k25", ".kdc", ".mef", ".mos",
    ".nef", ".nrw", ".pef", ".sr2", ".srf", ".srw",
}  # fmt: skip
_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_GENERIC = {b"mif1", b"msf1"}  # "some HEIF image": HEVC or AV1 inside

# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)

# We enforce our own limit on the pixels actually decoded (see _check_pixels), which lets a
# 100 MP JPEG through because draft() decodes it at 1/8 scale. Pillow's warning for the same
# images would only print noise over the progress bar. Its hard error (> 2x) still applies.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# exifread logs a WARNING for every file without EXIF (any PNG, most GIFs); for us that is
# normal, and with logging unconfigured it would print to stderr once per file.
_exif_log = logging.getLogger("exifread")
if _exif_log.level == logging.NOTSET:
    _exif_log.setLevel(logging.ERROR)


# Decoders signal damage with a zoo of exception types.
_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)


class ImageError(Exception):
    """A file that cannot become an image; str() is a one-line reason for the user."""


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes  # RGB JPEG, long side <= max_side, already upright (no EXIF)
    width: int
    height: int
    original_width: int  # as displayed, i.e. after EXIF orientation
    original_height: int
    format: str  # what the content really is, whatever the file is called
    extension: str  # canonical extension for that content, e.g. ".png"


def prepare_image(path: StrPath, max_side: int = 1024, quality: int = 85) -> PreparedImage:
    """Read any supported photo and return it as an upright RGB JPEG of long side <= max_side.

    Raises ImageError with a one-line reason for anything that is not a readable image.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    _check_file(path)
    if _sniff(path) in (".heic", ".avif"):
        _register_heif()
    with _open(path) as im:
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        try:
            orientation = _orientation(im)
            width, height = im.size
            scale = min(1.0, max_side / max(width, height))
            # Aspect from the full-size dimensions, not from the (rounded) draft ones.
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if scale < 1 and _seek_preview(im, size):
                try:
                    jpeg = _shrink(im, size, orientation, quality)
                except _DAMAGE:
                    # A damaged preview; the photo itself may be fine. Opened afresh: a
                    # JPEG drafted once (the preview) ignores a second draft() at full size.
                    with _open(path) as photo:
                        jpeg = _shrink(photo, size, orientation, quality)
            else:
                jpeg = _shrink(im, size, orientation, quality)
        except MemoryError:
            raise ImageError("image too large") from None
        except _DAMAGE as e:
            raise ImageError(f"truncated or corrupt {fmt}: {_one_line(e)}") from None
    if orientation in (5, 6, 7, 8):  # a quarter turn: displayed sideways to how it is stored
        width, height, size = height, width, (size[1], size[0])
    return PreparedImage(
        jpeg=jpeg,
        width=size[0],
        height=size[1],
        original_width=width,
        original_height=height,
        format=fmt,
        extension=_extension(fmt, path),
    )


def _open(path: StrPath) -> Image.Image:
    try:
        return Image.open(path, formats=_open_formats())
    except UnidentifiedImageError:
        raise ImageError("not an image") from None
    except Image.DecompressionBombError:
        raise ImageError("image too large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports a broken header this way (and OSError covers unreadable files).
        raise ImageError(f"unreadable image: {_one_line(e)}") from None


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
        except (*_DAMAGE, Image.DecompressionBombError):
            continue
        w, h = im.size
        same_shape = abs(w * height - h * width) <= 0.01 * width * h
        if same_shape and w >= size[0] and h >= size[1] and (best is None or w * h < best[0]):
            best = (w * h, frame)
    if looked:
        im.seek(best[1] if best else 0)  # also resets a frame that failed half-way
    return best is not None


def _shrink(im: Image.Image, size: tuple[int, int], orientation: int, quality: int) -> bytes:
    """Decode `im` at `size` (as stored), make it upright and encode it as an RGB JPEG."""
    # A JPEG can decode at 1/2, 1/4 or 1/8 scale almost for free; asking for the final size
    # makes Pillow pick the smallest scale that is still >= it (a 6000x4000 photo decodes at
    # 1500x1000, 16x fewer pixels). `box` is the exact source area in the drafted image.
    box = None
    drafted = im.draft("RGB", size) if im.size != size else None
    if drafted is not None:
        box = drafted[1]
    _check_pixels(im)
    im.load()

    im = _to_plain_mode(im)
    if im.size != size:
        # After a draft the factor left is < 2 and the DCT scaling has already filtered, so
        # area averaging (BOX) looks like LANCZOS (within 1.6/255 on average on the corpus
        # photos) at a third of its cost: 13 ms instead of 18 for HAMMING, 49 for LANCZOS.
        # reducing_gap: a cheap integer reduce() first when the factor left is still large.
        im = im.resize(size, Image.Resampling.BOX, box=box, reducing_gap=3.0)
    # Rotating after resizing moves 1/16 of the pixels; the tag is independent of scale.
    if orientation in _UPRIGHT:
        im = im.transpose(_UPRIGHT[orientation])
    im = _flatten(im)

    buf = io.BytesIO()
    # optimize=False: the extra Huffman pass costs time and saves only a few percent.
    im.save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _check_file(path: StrPath) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as e:
        raise ImageError(_one_line(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError("is a folder")
    if not stat.S_ISREG(st.st_mode):
        # Opening a FIFO or device would block or read forever.
        raise ImageError("not a regular file")
    if st.st_size == 0:
        raise ImageError("empty file")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _check_pixels(im: Image.Image) -> None:
    """Refuse to decode more pixels than Pillow's bomb limit (after any JPEG draft)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and im.width * im.height > limit:
        raise ImageError(f"image too large ({im.width}x{im.height})")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # Pillow's EXIF parser can fail many ways on garbage; upright it is.
        return 1
    return value if isinstance(value, int) else 1


def _to_plain_mode(im: Image.Image) -> Image.Image:
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
        return _scale_to_8bit(im)
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _scale_to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float greyscale: map the real range to 0..255 instead of clipping at 255."""
    if im.mode != "F":
        im = im.convert("I")
    low, high = im.getextrema()
    if im.mode == "F" and high <= 1.0:
        factor = 255.0  # float images in 0..1
    elif high <= 255:
        factor = 1.0
    elif high <= 65535:
        factor = 255 / 65535  # 16-bit samples, whatever bit depth the sensor filled
    else:
        factor = 255 / high
    if low < 0 and high > low:
        return im.point(lambda v: (v - low) * (255 / (high - low))).convert("L")
    return im.point(lambda v: v * factor).convert("L")


def _flatten(im: Image.Image) -> Image.Image:
    """Composite any alpha onto white (models read transparent black as a black photo)."""
    if im.mode in ("RGBA", "LA"):
        background = Image.new("RGB", im.size, _WHITE)
        background.paste(im.convert("RGB"), mask=im.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


def real_extension(path: StrPath) -> str | None:
    """The canonical extension for what the file really contains, or None if not an image."""
    try:
        return image_extension(path)
    except ImageError:
        return None


def image_extension(path: StrPath) -> str:
    """Like real_extension, but an ImageError says why the file is not an image.

    Reads only the header: magic bytes for common formats, else Pillow's lazy open.
    """
    _check_file(path)
    ext = _sniff(path)
    if ext is not None:
        return _raw_or(ext, path)
    try:
        with Image.open(path, formats=_open_formats()) as im:
            fmt = str(im.format)
    except Exception:  # anything Pillow cannot even identify is not an image to us
        raise ImageError("not an image (or a format pipe cannot read)") from None
    return _extension(fmt, path)


def named_as(path: StrPath, ext: str) -> bool:
    """Whether the file's own name already says `ext` (".jpeg" says ".jpg")."""
    own = os.path.splitext(os.fspath(path))[1].lower()
    return own == ext or own in _ALIASES.get(ext, ())


def _extension(fmt: str, path: StrPath) -> str:
    return _raw_or(_EXTENSIONS.get(fmt, "." + fmt.lower()), path)


def _raw_or(ext: str, path: StrPath) -> str:
    """Keep a camera raw's own extension: it is TIFF inside but no one wants it called .tif."""
    if ext == ".tif":
        own = os.path.splitext(os.fspath(path))[1].lower()
        if own in _TIFF_RAW:
            return own
    return ext


def _open_formats() -> list[str]:
    # Pillow raises KeyError for a format it has no opener for, and HEIF appears only once
    # pillow-heif registers, so this is worked out per call (it is a few dict lookups).
    Image.init()  # loads the plugins once; later calls return at once
    return [f for f in _FORMATS if f in Image.OPEN]


def _sniff(path: StrPath) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if head[4:8] == b"ftyp":
        # ISO-BMFF: major brand, then compatible brands up to the end of the ftyp box.
        end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}
        if brands & _AVIF_BRANDS and not brands & _HEVC_BRANDS:
            return ".avif"
        if brands & (_HEVC_BRANDS | _HEIF_GENERIC):
            return ".heic"
    return None


_heif_lock = threading.Lock()
_heif_done = False


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF via the optional pillow-heif, once, on the first HEIF file."""
    global _heif_done
    with _heif_lock:
        if _heif_done:
            return
        _heif_done = True
        try:
            import pillow_heif  # type: ignore[import-not-found]
        except ImportError:
            return  # then HEIC files fail as "not an image"; AVIF may still be native
        pillow_heif.register_heif_opener()


# --- metadata -----------------------------------------------------------------------------


class _Blank(str):
    """An empty string that formats as empty under any spec, so `{exif.date:%Y}` or
    `{exif.lat:.4f}` renders "" for a photo without that field instead of failing."""

    def __format__(self, spec: str) -> str:
        return ""


BLANK = _Blank()


@dataclass(frozen=True)
class Metadata:
    date: datetime | None = None  # naive, camera-local: EXIF has no reliable time zone
    date_source: str = ""  # "DateTimeOriginal", "DateTime" or ""
    make: str = ""
    model: str = ""
    camera: str = ""  # "Make Model" without the make said twice
    lat: float | None = None
    lon: float | None = None

    def fields(self, mtime: float | None = None, prefer: str = "original") -> dict[str, object]:
        """The `exif.*` template fields. Missing values are "" (a blank that accepts any
        format spec), never None. The date falls back to `mtime` when EXIF has none;
        prefer="mtime" uses the file time whenever it is given."""
        if prefer not in ("original", "mtime"):
            raise ValueError(f"prefer must be 'original' or 'mtime', got {prefer!r}")
        date: datetime | None = self.date
        source = self.date_source
        if mtime is not None and (prefer == "mtime" or date is None):
            date, source = datetime.fromtimestamp(mtime), "mtime"
        has_gps = self.lat is not None and self.lon is not None
        return {
            "date": date if date is not None else BLANK,
            "date_source": source,
            "make": self.make,
            "model": self.model,
            "camera": self.camera,
            "lat": self.lat if has_gps else BLANK,
            "lon": self.lon if has_gps else BLANK,
            "gps": f"{self.lat:.6f},{self.lon:.6f}" if has_gps else "",
        }


def read_metadata(path: StrPath) -> Metadata:
    """Date, camera and position from EXIF; an empty Metadata when any of it is unreadable."""
    try:
        with open(path, "rb") as f:
            tags = exifread.process_file(f, details=False, extract_thumbnail=False)
    except Exception:  # missing file, folder, or exifread choking on garbage: no metadata
        return Metadata()
    try:
        return _metadata(tags)
    except Exception:  # a value shape we did not foresee must not stop a whole run
        return Metadata()


def _metadata(tags: dict[str, Any]) -> Metadata:
    date, source = None, ""
    for key, name in (
        ("EXIF DateTimeOriginal", "DateTimeOriginal"),
        ("Image DateTime", "DateTime"),
    ):
        date = _parse_date(_text(tags.get(key)))
        if date is not None:
            source = name
            break
    make, model = _text(tags.get("Image Make")), _text(tags.get("Image Model"))
    lat = _coordinate(tags.get("GPS GPSLatitude"), tags.get("GPS GPSLatitudeRef"), "S", 90)
    lon = _coordinate(tags.get("GPS GPSLongitude"), tags.get("GPS GPSLongitudeRef"), "W", 180)
    # 0,0 is what receivers write before a fix; a half position is no position.
    if lat is None or lon is None or (lat == 0 and lon == 0):
        lat = lon = None
    return Metadata(date, source, make, model, _camera(make, model), lat, lon)


def _text(tag: Any) -> str:
    if tag is None:
        return ""
    value = getattr(tag, "values", tag)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, list):
        value = "".join(chr(v) if isinstance(v, int) and 0 < v < 0x110000 else "" for v in value)
    # Fixed-width ASCII fields arrive padded with NULs and spaces.
    return " ".join(str(value).replace("\x00", " ").split())


_DATE = re.compile(
    r"(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


def _parse_date(text: str) -> datetime | None:
    """EXIF "YYYY:MM:DD HH:MM:SS"; blanked ("0000:00:00 ...") or impossible dates are None."""
    m = _DATE.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _coordinate(tag: Any, ref: Any, negative: str, limit: float) -> float | None:
    """Degrees/minutes/seconds rationals to signed decimal degrees; None if malformed."""
    values = getattr(tag, "values", None)
    if not isinstance(values, list) or not 1 <= len(values) <= 3:
        return None
    total = 0.0
    for part, unit in zip(values, (1, 60, 3600), strict=False):
        number = _number(part)
        if number is None or number < 0 or not math.isfinite(number):
            return None
        total += number / unit
    if total > limit:
        return None
    return -total if _text(ref)[:1].upper() == negative else total


def _number(value: Any) -> float | None:
    # exifread keeps x/0 rationals as Fraction subclasses with a 0 denominator.
    if isinstance(value, Fraction):
        return None if value.denominator == 0 else float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


# Words that only say "a company" and add nothing to a camera's name.
_COMPANY = re.compile(
    r"[\s,]+(corporation|corp\.?|company|co\.?,?\s*ltd\.?|co\.?|ltd\.?|inc\.?|limited|"
    r"optical|electric|imaging|global)\b\.?",
    re.IGNORECASE,
)


def _camera(make: str, model: str) -> str:
    """ "Canon" + "Canon PowerShot S40" -> "Canon PowerShot S40";
    "NIKON CORPORATION" + "NIKON D70" -> "NIKON D70"; "OLYMPUS CORPORATION" + "C8080WZ"
    -> "OLYMPUS C8080WZ"."""
    brand = make
    while True:
        shorter = _COMPANY.sub("", brand).strip(" ,.")
        if shorter == brand or not shorter:
            break
        brand = shorter
    if not model:
        return brand
    if not brand:
        return model
    words = {w.lower() for w in brand.split()}
    first = model.split()[0].lower()
    # The model often repeats the make ("KODAK CX7530" from "EASTMAN KODAK COMPANY").
    if first in words or model.lower().startswith(brand.lower()):
        return model
    return f"{brand} {model}"
