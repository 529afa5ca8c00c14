"""The few metadata fields the naming templates use ({exif.date}, {exif.camera}, {exif.gps},
...), read from wherever a photo keeps them: every EXIF block and the XMP packets of a JPEG,
PNG, WebP, HEIF/HEIC/AVIF, JPEG XL or TIFF file (see `containers`). `read_metadata` never
raises; a photo without them gets blanks.

`Metadata.date_source` names where the date came from, as "<block> <property>": the EXIF tag
name, or the XMP property with its conventional prefix whatever prefix the file binds (an old
`xap:CreateDate` reads as "XMP xmp:CreateDate"). The first of these that holds a valid date
wins, the same for every format:

1. "EXIF DateTimeOriginal"       when the shutter fired (from any EXIF block of the file)
2. "XMP exif:DateTimeOriginal"   the same, kept by editors that write XMP only
3. "XMP photoshop:DateCreated"   IPTC's date created: the original date by MWG's mapping
4. "EXIF DateTimeDigitized"      when it became digital: the shot, or a print's scan
5. "XMP xmp:CreateDate"          the same in XMP (MWG); editors put the file's creation here
6. "XMP exif:DateTimeDigitized"
7. "EXIF DateTime"               last change of the file by software
8. "XMP xmp:ModifyDate"
then `Metadata.fields` falls back to the file's time, "mtime".

Dates are naive camera-local wall-clock times: EXIF has no reliable time zone, so XMP's
offset ("2019-07-04T18:22:05+02:00") is dropped to match. A date without a day ("2019",
"2019-07") is not used: a made-up day would be named as if known.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import TypeVar

from pipeline.media import containers, tiff, xmp
from pipeline.media.formats import StrPath

# Best first; the key of each EXIF source in `tiff.read_tags`, or of each XMP property.
DATE_SOURCES: tuple[tuple[str, str], ...] = (
    ("EXIF DateTimeOriginal", "EXIF DateTimeOriginal"),
    ("XMP exif:DateTimeOriginal", "exif:DateTimeOriginal"),
    ("XMP photoshop:DateCreated", "photoshop:DateCreated"),
    ("EXIF DateTimeDigitized", "EXIF DateTimeDigitized"),
    ("XMP xmp:CreateDate", "xmp:CreateDate"),
    ("XMP exif:DateTimeDigitized", "exif:DateTimeDigitized"),
    ("EXIF DateTime", "Image DateTime"),
    ("XMP xmp:ModifyDate", "xmp:ModifyDate"),
)


_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _Blank(str):
    """An empty string that formats as empty under any spec, so `{exif.date:%Y}` or
    `{exif.lat:.4f}` renders "" for a photo without that field instead of failing."""

    def __format__(self, spec: str) -> str:
        return ""


BLANK = _Blank()


@dataclass(frozen=True)
class Metadata:
    date: datetime | None = None  # naive, camera-local: EXIF has no reliable time zone
    date_source: str = ""  # where `date` came from: one of DATE_SOURCES' names, or ""
    make: str = ""
    model: str = ""
    camera: str = ""  # "Make Model" without the make said twice
    lat: float | None = None
    lon: float | None = None
    # Every date found, best first, as (source, date): `date` is the first. For `pipe show`,
    # and for a user wondering why a photo got the date it got.
    dates: tuple[tuple[str, datetime], ...] = ()

    def fields(self, mtime: float | None = None, prefer: str = "original") -> dict[str, object]:
        """The `exif.*` template fields. Missing values are "" (a blank that accepts any
        format spec), never None. The date falls back to `mtime` when the file has none;
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
    """Date, camera and position from the file's EXIF and XMP; an empty Metadata when none of
    it is readable. Reads only the metadata, never the pixels."""
    try:
        with open(path, "rb") as f:
            found = containers.scan(f)
            # Inside the `with`: a TIFF file's EXIF block is the open file itself.
            blocks = [_safely(tiff.read_tags, read, {}) for read in found.exif]
    except Exception:  # missing file, folder, unreadable, or a bug on a shape not foreseen
        return Metadata()
    try:
        return _metadata(blocks, _xmp_properties(found, blocks))
    except Exception:  # a value shape we did not foresee must not stop a whole run
        return Metadata()


def _safely(parse: Callable[[_In], _Out], data: _In, empty: _Out) -> _Out:
    # One damaged block must not hide the others.
    try:
        return parse(data)
    except Exception:
        return empty


def _xmp_properties(found: containers.Found, blocks: list[dict[str, tiff.Value]]) -> dict[str, str]:
    """The XMP date properties of the file; the first packet that has one wins: the
    container's own packets, then the one a TIFF keeps in tag 700, then Extended XMP."""
    packets = list(found.xmp)
    packets += [b["Image XMP"] for b in blocks if isinstance(b.get("Image XMP"), bytes)]
    merged: dict[str, str] = {}
    for packet in packets:
        for key, value in _safely(xmp.read_properties, packet, {}).items():
            merged.setdefault(key, value)
    guid = merged.get("xmpNote:HasExtendedXMP", "").encode("ascii", "replace")
    if guid in found.extended_xmp:
        packet = xmp.join_extended(found.extended_xmp[guid])
        for key, value in _safely(xmp.read_properties, packet, {}).items():
            merged.setdefault(key, value)
    return merged


def _metadata(blocks: list[dict[str, tiff.Value]], properties: dict[str, str]) -> Metadata:
    dates: list[tuple[str, datetime]] = []
    for source, key in DATE_SOURCES:
        texts: Iterable[object] = (
            (b.get(key) for b in blocks) if source.startswith("EXIF") else (properties.get(key),)
        )
        for text in texts:
            date = _parse_date(_text(text))
            if date is not None:
                dates.append((source, date))
                break
    source, date = dates[0] if dates else ("", None)
    # Camera and place from the first block that has them; a later block is most often a
    # copy of the first, or a thumbnail's.
    make = model = ""
    for b in blocks:
        make, model = _text(b.get("Image Make")), _text(b.get("Image Model"))
        if make or model:
            break
    lat = lon = None
    for b in blocks:
        lat = _coordinate(b.get("GPS GPSLatitude"), b.get("GPS GPSLatitudeRef"), "S", 90)
        lon = _coordinate(b.get("GPS GPSLongitude"), b.get("GPS GPSLongitudeRef"), "W", 180)
        # 0,0 is what receivers write before a fix; a half position is no position.
        if lat is None or lon is None or (lat == 0 and lon == 0):
            lat = lon = None
        else:
            break
    return Metadata(date, source, make, model, _camera(make, model), lat, lon, tuple(dates))


def _text(value: object) -> str:
    if isinstance(value, bytes):  # an UNDEFINED-typed string
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return ""
    # Fixed-width ASCII fields arrive padded with NULs and spaces.
    return " ".join(value.replace("\x00", " ").split())


_DATE = re.compile(
    r"(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


def _parse_date(text: str) -> datetime | None:
    """EXIF "YYYY:MM:DD HH:MM:SS", or XMP's ISO 8601 "YYYY-MM-DD[THH:MM[:SS[.s]]][offset]"
    read up to the seconds (the offset is dropped); blanked ("0000:00:00 ...") or impossible
    dates, and dates without a day, are None."""
    m = _DATE.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _coordinate(values: object, ref: object, negative: str, limit: float) -> float | None:
    """Degrees/minutes/seconds rationals to signed decimal degrees; None if malformed."""
    if not isinstance(values, tuple) or not 1 <= len(values) <= 3:
        return None
    total = 0.0
    for part, unit in zip(values, (1, 60, 3600), strict=False):
        # x/0 rationals arrive as None.
        if not isinstance(part, Fraction | int) or part < 0:
            return None
        number = float(part)
        if not math.isfinite(number):
            return None
        total += number / unit
    if total > limit:
        return None
    return -total if _text(ref)[:1].upper() == negative else total


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
