"""`{existing.caption}` and `{existing.keywords}`: what a photo already says about itself,
so a prompt can build on a person's own words. Read through exiv2 from, first to last, its
XMP sidecar (`photo.jpg.xmp`, darktable's and digiKam's, then `photo.xmp`, Lightroom's),
the photo's own XMP (dc:description, dc:subject) and its IPTC (Caption-Abstract,
Keywords). The caption is the first found; the keywords are all of them, once each.

Photos and sidecars are untrusted: a sidecar is read only if it is a regular file of at
most MAX_PACKET bytes and well-formed XML without a DOCTYPE (`fields.read_sidecar`), a
photo's XMP only if each packet in it is; anything else, or anything exiv2 refuses or
logs, gives empty fields. Nothing here raises or writes to stderr."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from pipeline import keywords as keyword_text
from pipeline.media.xmp.fields import XmpError, XmpFields, read, read_sidecar
from pipeline.media.xmp.read import MAX_PACKET

PARTS = ("caption", "keywords")
MAX_CAPTION = 2000  # characters a prompt gets of a caption
MAX_KEYWORDS = 50
MAX_KEYWORD = 100  # characters of one keyword


def empty() -> dict[str, str]:
    return dict.fromkeys(PARTS, "")


def existing(path: str) -> dict[str, str]:
    """PARTS as the photo and its sidecar say them ("" where nothing is said)."""
    found: list[XmpFields] = []
    for sidecar in (path + ".xmp", os.path.splitext(path)[0] + ".xmp"):
        data = _small_file(sidecar)
        if data is not None:
            # XmpError for what pipe refuses; anything else exiv2 may raise is as bad.
            with contextlib.suppress(XmpError, Exception):
                found.append(read_sidecar(data))
    found.extend(_embedded(path))
    return _said(found)


def _said(found: list[XmpFields]) -> dict[str, str]:
    caption = next((f.description.strip() for f in found if f.description), "")
    seen: set[str] = set()
    words: list[str] = []
    for fields in found:
        for keyword in fields.keywords or ():
            keyword = " ".join(keyword.split())[:MAX_KEYWORD]
            if keyword and keyword.casefold() not in seen and len(words) < MAX_KEYWORDS:
                seen.add(keyword.casefold())
                words.append(keyword)
    return {"caption": _printable(caption)[:MAX_CAPTION], "keywords": keyword_text.join(words)}


def _printable(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _small_file(path: str) -> bytes | None:
    """A regular file's bytes if it has at most MAX_PACKET (never blocking on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PACKET:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_PACKET + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _embedded(path: str) -> list[XmpFields]:
    """The photo's own XMP and IPTC fields (none when any of its XMP is suspect)."""
    if not _packets_sound(path):
        return []
    from pipeline.media.xmp.fields import exiv2_log, load_exiv2

    exiv2 = load_exiv2()
    # What exiv2 logs (a maker note it does not know) is dropped: reading keeps the rest.
    with exiv2_log():
        try:
            image = exiv2.ImageFactory.open(path)
            image.readMetadata()
            return [read(image.xmpData()), _iptc(image.iptcData())]
        except Exception:  # exiv2.Exiv2Error, or a value shape not foreseen
            return []


def _iptc(data: Any) -> XmpFields:
    caption: str | None = None
    keywords: list[str] = []
    for datum in data:
        key = datum.key()
        if key == "Iptc.Application2.Caption" and caption is None:
            caption = datum.toString()
        elif key == "Iptc.Application2.Keywords":
            keywords.append(datum.toString())
    return XmpFields(description=caption, keywords=tuple(keywords))


def _packets_sound(path: str) -> bool:
    """exiv2 is handed nothing that could blow up or change it (media/xmp/photo.py)."""
    from pipeline.media.xmp.photo import check_packets

    try:
        check_packets(path)
    except Exception:  # unreadable, or XmpError
        return False
    return True
