"""`{existing.caption}`, `{existing.keywords}`: from a photo's XMP and IPTC and its sidecars;
hostile ones give empty fields, never an error or a word on stderr."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.hints.existing import MAX_KEYWORDS, existing
from pipeline.media.xmp.fields import XmpFields, merge_sidecar
from pipeline.media.xmp.read import MAX_PACKET
from tests.hints.photos import SAMPLES, copy, embed

EMPTY = {"caption": "", "keywords": ""}


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return copy(SAMPLES / "Kodak_CX7530.jpg", tmp_path / "photo.jpg")  # no XMP or IPTC


def sidecar(caption: str | None = None, keywords: tuple[str, ...] | None = None) -> bytes:
    return merge_sidecar(None, XmpFields(description=caption, keywords=keywords))


def test_nothing_said(photo: Path) -> None:
    assert existing(str(photo)) == EMPTY


def test_embedded_xmp(photo: Path) -> None:
    embed(
        photo,
        xmp={
            "Xmp.dc.description": 'lang="x-default" Boats in the harbour',
            "Xmp.dc.subject": "boat, harbour",
        },
    )
    assert existing(str(photo)) == {"caption": "Boats in the harbour", "keywords": "boat, harbour"}


def test_iptc(photo: Path) -> None:
    iptc = {
        "Iptc.Application2.Caption": ["Fishing boats at dawn"],
        "Iptc.Application2.Keywords": ["boat", "Dawn", "boat"],
    }
    embed(photo, iptc=iptc)
    assert existing(str(photo)) == {"caption": "Fishing boats at dawn", "keywords": "boat, Dawn"}


@pytest.mark.parametrize("name", ["photo.jpg.xmp", "photo.xmp"])
def test_a_sidecar_of_either_name(photo: Path, name: str) -> None:
    (photo.parent / name).write_bytes(sidecar("A quiet harbour", ("harbour", "Straße")))
    assert existing(str(photo)) == {"caption": "A quiet harbour", "keywords": "harbour, Straße"}


def test_the_sidecar_first_then_the_photo(photo: Path) -> None:
    embed(photo, iptc={"Iptc.Application2.Caption": ["old"], "Iptc.Application2.Keywords": ["a"]})
    (photo.parent / "photo.jpg.xmp").write_bytes(sidecar("darktable's", ("b", "A")))
    (photo.parent / "photo.xmp").write_bytes(sidecar("Lightroom's", ("c",)))
    assert existing(str(photo)) == {"caption": "darktable's", "keywords": "b, A, c"}


def test_bounded(photo: Path) -> None:
    many = tuple(f"k{i}" for i in range(500))
    (photo.parent / "photo.xmp").write_bytes(sidecar("word " * 10_000, many))
    said = existing(str(photo))
    assert len(said["caption"]) == 2000
    assert said["keywords"].split(", ") == list(many[:MAX_KEYWORDS])


HOSTILE_SIDECARS = {
    "broken": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF",
    "not xml": b"\x00\xff" * 1000,
    "doctype": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&b;</x:xmpmeta>"
    ),
    "huge": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b" " * (MAX_PACKET + 10) + b"</x:xmpmeta>",
    "empty": b"",
    "a jpeg": (SAMPLES / "Kodak_CX7530.jpg").read_bytes(),
}


@pytest.mark.parametrize("kind", HOSTILE_SIDECARS)
def test_hostile_sidecars_say_nothing_and_nothing_on_stderr(
    photo: Path, kind: str, capfd: pytest.CaptureFixture[str]
) -> None:
    embed(photo, iptc={"Iptc.Application2.Caption": ["kept"]})
    (photo.parent / "photo.jpg.xmp").write_bytes(HOSTILE_SIDECARS[kind])
    assert existing(str(photo)) == {"caption": "kept", "keywords": ""}
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_fifo_or_a_folder_as_sidecar_does_not_block(photo: Path) -> None:
    os.mkfifo(photo.parent / "photo.jpg.xmp")
    (photo.parent / "photo.xmp").mkdir()
    assert existing(str(photo)) == EMPTY


@pytest.mark.parametrize(
    "packet",
    [
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><!DOCTYPE x [<!ENTITY a "a">]>'
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&a;</x:xmpmeta>",
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF",
    ],
)
def test_a_photo_with_hostile_xmp_says_nothing(
    tmp_path: Path, packet: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    data = (SAMPLES / "Kodak_CX7530.jpg").read_bytes()
    app1 = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    segment = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    path = tmp_path / "hostile.jpg"
    path.write_bytes(data[:2] + segment + data[2:])
    assert existing(str(path)) == EMPTY
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["garbage.jpg", "missing.jpg", "text.txt"])
def test_not_a_photo(tmp_path: Path, name: str) -> None:
    if name == "garbage.jpg":
        (tmp_path / name).write_bytes(b"\xff\xd8\xff\xe1\xff\xff" + os.urandom(5000))
    elif name == "text.txt":
        (tmp_path / name).write_text("hello")
    assert existing(str(tmp_path / name)) == EMPTY
