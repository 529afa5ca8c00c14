"""What a file really is: sniffed from its first bytes, whatever it is called.

The canonical extension for each format, camera raw files (TIFF inside, never called .tif),
and the one-line `ImageError` every image problem becomes.
"""

from __future__ import annotations

import importlib
import os
import stat
import threading
from types import ModuleType

StrPath = str | os.PathLike[str]

# Only the formats a photo library holds. Letting Pillow try all of its ~40 decoders would
# both widen the attack surface and let random bytes pass as some obscure format.
# (MPO, the multi-picture JPEG of many phones, is opened by the JPEG plugin.)
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "AVIF", "JPEG2000", "JXL")
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
    "JXL": ".jxl",
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
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
# Images pipe knows but cannot read: said plainly, never "not an image".
_UNREADABLE = {
    b"8BPS": "Photoshop PSD is not supported (save a JPEG or PNG copy)",
    b"gimp xcf": "GIMP XCF is not supported (export a JPEG or PNG)",
}
_CANON_RAW = {b"crx "}  # CR3: ISO-BMFF like HEIF, but raw sensor data


class ImageError(Exception):
    """A file that cannot become an image; str() is a one-line reason for the user."""


def check_file(path: StrPath) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as e:
        raise ImageError(one_line(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError("is a folder")
    if not stat.S_ISREG(st.st_mode):
        # Opening a FIFO or device would block or read forever.
        raise ImageError("not a regular file")
    if st.st_size == 0:
        raise ImageError("empty file")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


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
    check_file(path)
    ext = sniff(path)
    if ext is not None:
        return _raw_or(ext, path)
    from PIL import Image  # here: `formats` answers most questions without Pillow

    try:
        with Image.open(path, formats=open_formats()) as im:
            fmt = str(im.format)
    except Exception:  # anything Pillow cannot even identify is not an image to us
        raise ImageError("not an image") from None
    return extension_of(fmt, path)


def named_as(path: StrPath, ext: str) -> bool:
    """Whether the file's own name already says `ext` (".jpeg" says ".jpg")."""
    own = os.path.splitext(os.fspath(path))[1].lower()
    return own == ext or own in _ALIASES.get(ext, ())


def extension_of(fmt: str, path: StrPath) -> str:
    return _raw_or(_EXTENSIONS.get(fmt, "." + fmt.lower()), path)


def _raw_or(ext: str, path: StrPath) -> str:
    """Keep a camera raw's own extension: it is TIFF inside but no one wants it called .tif."""
    if ext == ".tif":
        own = os.path.splitext(os.fspath(path))[1].lower()
        if own in _TIFF_RAW:
            return own
    return ext


def open_formats() -> list[str]:
    # Pillow raises KeyError for a format it has no opener for, and HEIF appears only once
    # pillow-heif registers, so this is worked out per call (it is a few dict lookups).
    from PIL import Image

    Image.init()  # loads the plugins once; later calls return at once
    return [f for f in _FORMATS if f in Image.OPEN]


def sniff(path: StrPath) -> str | None:
    """The extension for what the first bytes say, None if they say nothing we know.

    Raises ImageError for an image in a format pipe knows it cannot read."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    for magic, reason in _UNREADABLE.items():
        if head.startswith(magic):
            raise ImageError(reason)
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
    if head.startswith((b"\xff\x0a", _JXL_CONTAINER)):
        return ".jxl"
    if head[4:8] == b"ftyp":
        # ISO-BMFF: major brand, then compatible brands up to the end of the ftyp box.
        end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}
        if brands & _CANON_RAW:
            raise ImageError("Canon CR3 raw photos are not supported (use the camera's JPEG)")
        if brands & _AVIF_BRANDS and not brands & _HEVC_BRANDS:
            return ".avif"
        if brands & (_HEVC_BRANDS | _HEIF_GENERIC):
            return ".heic"
    return None


_plugins_lock = threading.Lock()
_plugins: dict[str, ModuleType | None] = {}


def register_heif() -> ModuleType:
    """pillow-heif, imported (and taught to Pillow) on the first HEIC photo, never before:
    a text-only run does not load it."""
    return _plugin(
        "pillow_heif", "HEIC photo: pillow-heif is not installed (pip install pillow-heif)"
    )


def register_jxl() -> ModuleType:
    """The JPEG XL plugin for Pillow, on the first JPEG XL file."""
    return _plugin("pillow_jxl", "JPEG XL needs pillow-jxl-plugin (pip install pillow-jxl-plugin)")


def _plugin(name: str, missing: str) -> ModuleType:
    with _plugins_lock:
        if name not in _plugins:
            try:
                module: ModuleType | None = importlib.import_module(name)
            except ImportError:
                module = None
            if module is not None and name == "pillow_heif":
                module.register_heif_opener()
            _plugins[name] = module
        module = _plugins[name]
    if module is None:
        raise ImageError(missing)
    return module
