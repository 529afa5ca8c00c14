"""`{exif.place}`: GPS named offline, never by the network."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

from pipeline.hints import place
from pipeline.media.exif import read_metadata
from tests.hints.photos import AREZZO, gps_photos


@pytest.mark.parametrize("photo", gps_photos(), ids=lambda p: p.name)
def test_the_corpus_photos_are_in_arezzo(photo: Path) -> None:
    exif = read_metadata(photo).fields()
    assert place.place(exif["lat"], exif["lon"]) == {
        "place": AREZZO,
        "town": "Arezzo",
        "region": "Tuscany",
        "country": "Italy",
    }


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (35.6895, 139.6917, "Tokyo, Japan"),  # the region says the town again: once
        (1.29, 103.85, "Singapore"),
        (-33.87, 151.21, "Sydney, New South Wales, Australia"),
        (0.0, -30.0, ""),  # mid-Atlantic: no town within 100 km
        (float("nan"), 0.0, ""),
        (91.0, 0.0, ""),
    ],
)
def test_places(lat: float, lon: float, expected: str) -> None:
    assert place.place(lat, lon)["place"] == expected


def test_no_gps_is_empty() -> None:
    exif = read_metadata(Path(__file__)).fields()  # not a photo: blanks
    assert place.place(exif["lat"], exif["lon"]) == place.empty()


def test_missing_data_is_empty_and_never_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package downloads its data when its file is missing; pipe must not let it."""
    (tmp_path / "__init__.py").write_text("raise AssertionError('imported without its data')\n")
    spec = types.SimpleNamespace(origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert place._load() is None


def test_loading_takes_away_the_download() -> None:
    """In a fresh interpreter: the data loads from the package's own files, and its
    `urlopen` is pipe's refusal from then on; nothing touches the network."""
    code = (
        "import socket\n"
        "def no(*a, **k): raise AssertionError('network')\n"
        "socket.socket.connect = no\n"
        "socket.create_connection = no\n"
        "from pipeline.hints import place\n"
        "assert place.place(43.4674, 11.885)['town'] == 'Arezzo'\n"
        "import reverse_geocode\n"
        "assert reverse_geocode.urlopen is place._no_network\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""


def test_scipy_is_loaded_only_for_a_place() -> None:
    code = (
        "import sys\n"
        "from pipeline.hints import Hints\n"
        "Hints({'folder', 'exif.date'}).read('/x/IMG_1.jpg', {'lat': 43.4, 'lon': 11.8})\n"
        "assert 'scipy' not in sys.modules and 'reverse_geocode' not in sys.modules\n"
        "Hints({'exif.place'}).read('/x/IMG_1.jpg', {'lat': 43.4674, 'lon': 11.885})\n"
        "assert 'reverse_geocode' in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
