"""`{name_hint}`: a name a person gave is a hint; one a camera or an app made up is not."""

from __future__ import annotations

import pytest

from pipeline.hints.camera_names import is_camera_name, name_hint

MADE_UP = [
    "IMG_1234.jpg", "IMG_1234.JPG", "img_20230101_101010.jpg", "IMG_1234 copy.jpg",
    "IMG_1234 (1).jpg", "IMG_1234-edited.jpg", "IMG-20230101-WA0001.jpg", "IMG_1234.HEIC",
    "DSC0001.JPG", "DSC_0001.NEF", "_DSC0001.ARW", "DSCN0010.jpg", "DSCF1234.RAF",
    "_MG_1234.CR2", "PXL_20230101_123456789.jpg", "PXL_20230101_123456789.MP.jpg",
    "PXL_20230101_123456789.PORTRAIT.jpg", "P1000123.JPG", "GOPR0001.JPG", "GH010123.MP4",
    "DJI_0001.JPG", "MVIMG_20190101_101010.jpg", "SAM_0001.JPG", "CIMG0001.JPG",
    "Screenshot_20230101-101010.png", "Screenshot 2023-01-01 at 10.00.00.png",
    "Screen Shot 2019-01-01 at 10.00.00 AM.png", "Bildschirmfoto 2023-01-01 um 10.00.00.png",
    "WhatsApp Image 2023-01-01 at 10.00.00.jpeg", "WhatsApp Image 2023-01-01 at 10.00.00 (1).jpeg",
    "9b2c1f3e-1234-4abc-8def-0123456789ab.jpg", "9B2C1F3E12344ABC8DEF0123456789AB.jpg",
    "20230101_101010.jpg", "2023-01-01 12.00.00.jpg", "1234.jpg", "photo.jpg", "IMG.jpg",
    "untitled.png", "scan.tif",
]  # fmt: skip
MEANINGFUL = {
    "beach_party-2019.jpg": "beach party 2019",
    "Straße am Meer.jpg": "Straße am Meer",
    "日の出.jpg": "日の出",
    "Anna.jpg": "Anna",
    "IMG_1234 Beach.jpg": "IMG 1234 Beach",
    "2023-01-01 beach.jpg": "2023 01 01 beach",
    "Screenshots of the beach.png": "Screenshots of the beach",
    "grandma's 90th birthday.jpeg": "grandma's 90th birthday",
}


@pytest.mark.parametrize("name", MADE_UP)
def test_made_up_names_say_nothing(name: str) -> None:
    assert name_hint(name) == ""
    assert name_hint(f"/photos/album/{name}") == ""


@pytest.mark.parametrize(("name", "hint"), MEANINGFUL.items())
def test_a_persons_name_is_a_hint(name: str, hint: str) -> None:
    assert name_hint(f"/photos/{name}") == hint


def test_hostile_names_are_bounded_and_printable() -> None:
    assert len(name_hint("a" * 10_000 + ".jpg")) == 200
    assert name_hint("a\x1bb\u202ec.jpg") == "abc"
    assert is_camera_name("IMG_" + "1" * 100_000 + "x") is False  # longer than any name: fast
    assert is_camera_name("IMG_" + "1" * 250 + "!") is False
