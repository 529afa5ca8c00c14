"""What a photo says, read by readers other than exiv2 (Pillow for pixels and IPTC,
ElementTree for the XMP packet), so the embedding tests do not trust the writer to check
itself. Shared by tests/media, tests/actions, tests/e2e and the kill bench."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image, ImageSequence, IptcImagePlugin

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def pixels(path: str | Path) -> str:
    """A digest of every frame's decoded pixels (mode, size and bytes), as Pillow decodes."""
    digest = hashlib.sha256()
    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            digest.update(f"{frame.mode} {frame.size}".encode())
            digest.update(frame.tobytes())
    return digest.hexdigest()


def xmp_packet(path: str | Path) -> bytes:
    with Image.open(path) as im:
        packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or b""
        if not packet and im.format == "TIFF":
            packet = im.tag_v2.get(700, b"")
    return packet.encode() if isinstance(packet, str) else bytes(packet)


def xmp_fields(path: str | Path) -> tuple[str | None, list[str]]:
    """dc:description (x-default) and dc:subject, as ElementTree reads the packet."""
    packet = xmp_packet(path)
    if not packet:
        return None, []
    root = ET.fromstring(packet.strip(b"\x00 \n"))
    description = None
    for li in root.iter(f"{DC}description"):
        for alt in li.iter(f"{RDF}li"):
            if alt.get(XML_LANG) == "x-default":
                description = alt.text
    subject = [li.text or "" for s in root.iter(f"{DC}subject") for li in s.iter(f"{RDF}li")]
    return description, subject


def iptc(path: str | Path) -> dict[tuple[int, int], bytes | list[bytes]]:
    with Image.open(path) as im:
        return IptcImagePlugin.getiptcinfo(im) or {}


def iptc_keywords(path: str | Path) -> list[str]:
    found = iptc(path).get((2, 25), [])
    return [k.decode() for k in (found if isinstance(found, list) else [found])]
