"""A photo with pipe's fields in its own XMP (and IPTC), written as a new file beside it.

The photo is copied to a hidden temporary file in its folder (`.pipe-….tmp`), hashed as it
is read; exiv2 opens and writes only that copy, never the photo. Before anything may
replace the photo, the copy is checked: it decodes to exactly the photo's pixels (every
page), pipe's fields read back from it as set, and what the photo held besides (EXIF tags,
its orientation, the ICC profile, other XMP properties and IPTC datasets) is still there.
The caller renames the copy over the photo (`actions/replacing.py`: journaled, fsynced) or
deletes it; a SIGKILL at any instant leaves the photo whole and at most a hidden temporary
file. exiv2 only ever reads the photo itself (to see whether it already holds the fields).

The copy keeps the photo's permissions and modification time: photo managers sort by the
file's date, and pipe's re-check follows the file's new size (see `Result.rewritten`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from typing import Any

from pipeline.media.embedding import iptc
from pipeline.media.embedding.formats import EmbedError, Writable, writable
from pipeline.media.embedding.pixels import check_same_pixels
from pipeline.media.xmp.fields import (
    XmpError,
    XmpFields,
    apply,
    check_well_formed,
    exiv2_log,
    exiv2_message,
    load_exiv2,
    read,
)

CHUNK = 1 << 20
# The copies' names carry the pid that makes them: a copy a killed run left (SIGKILL while
# it was being written or checked, before the journal knew of it) is removed by a later run,
# never one a live run is writing.
PREFIX = ".pipe-embed-"
PIPES = {"Xmp.dc.description", "Xmp.dc.subject", "Xmp.lr.hierarchicalSubject"}
# Tags that describe how a TIFF stores its pixels: exiv2 may drop them from a JPEG's EXIF,
# where they mean nothing, and the pixels themselves are compared anyway.
STRUCTURE = {
    f"Exif.Image.{tag}"
    for tag in (
        "ImageWidth", "ImageLength", "BitsPerSample", "Compression", "SamplesPerPixel",
        "PhotometricInterpretation", "PlanarConfiguration", "RowsPerStrip", "StripOffsets",
        "StripByteCounts", "TileOffsets", "TileByteCounts", "TileWidth", "TileLength",
    )
}  # fmt: skip


@dataclass(frozen=True)
class Original:
    """The photo as pipe read it: what may be replaced (a photo changed since is not)."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class Embedded:
    """`temp`: the checked new file beside the photo, to be renamed over it; None when the
    photo already holds these fields (nothing to write)."""

    temp: str | None
    original: Original | None  # None with no temp: the photo was only read


def embed(path: str, fields: XmpFields, previous: XmpFields | None = None) -> Embedded:
    """Write `fields` (merged as `fields.apply` does, `previous` being what pipe wrote
    before) into a checked copy of the photo. EmbedError: one line saying why not."""
    kind = writable(path)
    if _holds(path, kind, fields, previous):  # read only: a re-run costs no copy
        return Embedded(None, None)
    folder = os.path.dirname(path) or "."
    _sweep(folder)
    tmp = os.path.join(folder, f"{PREFIX}{os.getpid()}-{secrets.token_hex(8)}.tmp")
    try:
        original, st = _copy(path, tmp)
        if not _write(tmp, kind, fields, previous):
            os.unlink(tmp)
            return Embedded(None, original)
        check_same_pixels(path, tmp, kind.pages)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        return Embedded(tmp, original)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


_swept: set[str] = set()
_sweeping = threading.Lock()


def _sweep(folder: str) -> None:
    """Remove the copies killed runs left in `folder` (once per folder and process)."""
    with _sweeping:
        if folder in _swept:
            return
        _swept.add(folder)
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(PREFIX) and name.endswith(".tmp")):
                continue
            pid = name[len(PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _copy(path: str, tmp: str) -> tuple[Original, os.stat_result]:
    """Copy the photo to `tmp` (its permissions), hashing what is read."""
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise EmbedError("not a regular file")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as dst:
            os.fchmod(dst.fileno(), stat.S_IMODE(st.st_mode))
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    return Original(st.st_size, st.st_mtime_ns, digest.hexdigest()), st


def holds(path: str, fields: XmpFields, previous: XmpFields | None = None) -> Writable | None:
    """For a dry run: what pipe would write into (None: the photo already holds these
    fields), reading the photo only. EmbedError as `embed` would raise it."""
    kind = writable(path)
    return None if _holds(path, kind, fields, previous) else kind


def _holds(path: str, kind: Writable, fields: XmpFields, previous: XmpFields | None) -> bool:
    """Whether the photo already holds these fields (exiv2 reads it; nothing is written)."""
    exiv2 = load_exiv2()
    try:
        return _changed(_opened(path), kind, fields, previous) is None
    except exiv2.Exiv2Error as e:
        raise EmbedError(f"exiv2: {exiv2_message(e)}") from None
    except XmpError as e:
        raise EmbedError(f"its XMP: {e}") from None


def _opened(path: str) -> Any:
    """exiv2's image of `path` with its metadata read; XmpError for an XMP packet exiv2
    could not read (writing would drop it)."""
    from pipeline.media.xmp.photo import check_packets

    check_packets(path)
    exiv2 = load_exiv2()
    with exiv2_log() as messages:
        image = exiv2.ImageFactory.open(path)
        image.readMetadata()
        _check_xmp(image, messages)
    return image


def _changed(
    image: Any, kind: Writable, fields: XmpFields, previous: XmpFields | None
) -> tuple[Any, ...] | None:
    """Set the fields in exiv2's copy of the metadata (in memory): what pipe's fields
    become, or None when they are as they were."""
    old = _pipes(image, kind)
    apply(image.xmpData(), fields, previous)
    if kind.iptc:
        iptc.apply_iptc(image.iptcData(), fields, previous)
    want = _pipes(image, kind)
    return None if want == old else want


def _write(tmp: str, kind: Writable, fields: XmpFields, previous: XmpFields | None) -> bool:
    """Set the fields in `tmp` through exiv2 and check them read back; False when the photo
    already held exactly these (nothing written)."""
    exiv2 = load_exiv2()
    try:
        image = _opened(tmp)
        before = _kept(image, kind)
        want = _changed(image, kind, fields, previous)
        if want is None:
            return False
        with exiv2_log():
            image.writeMetadata()
            back = exiv2.ImageFactory.open(tmp)
            back.readMetadata()
    except exiv2.Exiv2Error as e:
        raise EmbedError(f"exiv2: {exiv2_message(e)}") from None
    except XmpError as e:
        raise EmbedError(f"its XMP: {e}") from None
    if _pipes(back, kind) != want:
        raise EmbedError("pipe's fields did not read back from the written file; not replacing")
    lost = _lost(before, _kept(back, kind))
    if lost:
        raise EmbedError(f"writing would lose the photo's {lost}; not replacing")
    return True


def _check_xmp(image: Any, messages: list[str]) -> None:
    """exiv2 reads a broken packet as empty, and writing would then drop the user's XMP."""
    packet = image.xmpPacket()
    if packet:
        check_well_formed(packet.encode("utf-8", "surrogateescape"))
        xmp_messages = [m for m in messages if "xmp" in m.lower()]
        if xmp_messages:
            raise XmpError(f"exiv2 cannot read it: {xmp_messages[0]}")


def _pipes(image: Any, kind: Writable) -> tuple[Any, ...]:
    """pipe's fields as the image holds them, XMP and IPTC."""
    fields = read(image.xmpData())
    if not kind.iptc:
        return (fields,)
    data = image.iptcData()
    return fields, iptc.caption(data), iptc.keywords(data)


def _kept(image: Any, kind: Writable) -> dict[str, Any]:
    """What the photo holds besides pipe's fields, as far as a write must keep it."""
    exif = image.exifData()
    orientation = [d.toString() for d in exif if d.key() == "Exif.Image.Orientation"]
    return {
        "EXIF tags": {d.key() for d in exif} - STRUCTURE,
        "orientation": orientation,
        "ICC profile": bytes(image.iccProfile().data()) if image.iccProfileDefined() else b"",
        "XMP properties": {d.key() for d in image.xmpData() if _present(d)} - PIPES,
        "IPTC datasets": {d.key() for d in image.iptcData()} if kind.iptc else set(),
    }


def _lost(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first thing the write lost, by name; None if everything was kept."""
    for name, value in before.items():
        kept = value <= after[name] if isinstance(value, set) else value == after[name]
        if not kept:
            return name
    return None


def _present(datum: Any) -> bool:
    """Whether an XMP property holds something (exiv2 drops an empty LangAlt on writing)."""
    exiv2 = load_exiv2()
    value = datum.value()
    if isinstance(value, exiv2.LangAltValue):
        return any(text for _, text in value.items())
    return True
