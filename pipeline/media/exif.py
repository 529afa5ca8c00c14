"""The few EXIF fields the naming templates use ({exif.date}, {exif.camera}, {exif.gps},
...): `read_metadata` never raises; a photo without them gets blanks."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import exifread

from pipeline.media.formats import StrPath

# exifread logs a WARNING for every file without EXIF (any PNG, most GIFs); for us that is
# normal, and with logging unconfigured it would print to stderr once per file.
_exif_log = logging.getLogger("exifread")
if _exif_log.level == logging.NOTSET:
    _exif_log.setLevel(logging.ERROR)


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
