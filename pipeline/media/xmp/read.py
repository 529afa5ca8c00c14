"""The date properties of an XMP packet, whatever prefix a file binds to their namespace and
whether it writes them as attributes (`<rdf:Description xmp:CreateDate="...">`) or as
elements (`<xmp:CreateDate>...</xmp:CreateDate>`).

Packets are untrusted. They are parsed with expat, which fetches nothing; a packet with a
DOCTYPE or an entity declaration (never legitimate in XMP, the way to an entity bomb) is
ignored whole; at most `MAX_PACKET` bytes are read and elements nest at most `_MAX_DEPTH`
deep. A packet that breaks off, or that is not UTF-8, keeps what was read before the break.
Nothing here raises on bad data."""

from __future__ import annotations

import zlib
from xml.parsers import expat

MAX_PACKET = 4 << 20

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_RDF, _RDF_DESCRIPTION = f"{_RDF} RDF", f"{_RDF} Description"
# Expanded names (namespace URI, a space, local name) -> the conventional prefixed name.
_PROPERTIES = {
    "http://ns.adobe.com/exif/1.0/ DateTimeOriginal": "exif:DateTimeOriginal",
    "http://ns.adobe.com/exif/1.0/ DateTimeDigitized": "exif:DateTimeDigitized",
    "http://ns.adobe.com/photoshop/1.0/ DateCreated": "photoshop:DateCreated",
    "http://ns.adobe.com/xap/1.0/ CreateDate": "xmp:CreateDate",
    "http://ns.adobe.com/xap/1.0/ ModifyDate": "xmp:ModifyDate",
    # Names the Extended XMP packet (JPEG) that continues this one.
    "http://ns.adobe.com/xmp/note/ HasExtendedXMP": "xmpNote:HasExtendedXMP",
}
_MAX_DEPTH = 64  # real packets nest under ten deep


class _Refused(Exception):
    """A DOCTYPE or entity declaration: drop the whole packet."""


class _TooDeep(Exception):
    """Nesting past any real packet: keep what was found, read no further."""


def read_properties(packet: bytes) -> dict[str, str]:
    """{"xmp:CreateDate": "2019-07-04T18:22:05+02:00", ...}: the first value of each wanted
    property of the packet's top-level descriptions, as written (stripped)."""
    packet = packet[:MAX_PACKET]
    found: dict[str, str] = {}
    try:
        _parse(packet, found)
    except _Refused:
        return {}
    except LookupError:
        # An encoding expat does not know ("QTF-16"): read it as the UTF-8 XMP must be.
        try:
            _parse(packet, found, "utf-8")
        except _Refused:
            return {}
        except (expat.ExpatError, _TooDeep):
            pass
    except (expat.ExpatError, _TooDeep):
        try:
            packet.decode("utf-8")
        except UnicodeDecodeError:
            # Packets that declare no encoding but hold Latin-1 text exist; the dates are ASCII,
            # so reading the rest with the bad bytes replaced can still find them.
            try:
                _parse(packet.decode("utf-8", "replace").encode("utf-8"), found)
            except _Refused:
                return {}
            except (expat.ExpatError, _TooDeep):
                pass
    return found


def _parse(packet: bytes, found: dict[str, str], encoding: str | None = None) -> None:
    """`encoding`: read as this whatever the packet declares."""
    parser = expat.ParserCreate(encoding, namespace_separator=" ")
    parser.buffer_text = True
    stack: list[str] = []
    text: list[str] | None = None  # the text of the wanted property element being read
    prop, depth = "", 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal text, prop, depth
        if len(stack) >= _MAX_DEPTH:
            raise _TooDeep
        parent = stack[-1] if stack else ""
        in_description = parent == _RDF_DESCRIPTION and len(stack) > 1 and stack[-2] == _RDF_RDF
        stack.append(name)
        if name == _RDF_DESCRIPTION and parent == _RDF_RDF:
            for key, value in attributes.items():
                _keep(found, key, value)
        elif in_description and name in _PROPERTIES:
            text, prop, depth = [], name, len(stack)

    def end(name: str) -> None:
        nonlocal text
        if text is not None and len(stack) == depth:
            _keep(found, prop, "".join(text))
            text = None
        stack.pop()

    def data(chunk: str) -> None:
        # Only the property's own text: a nested element (rdf:Alt ...) is not a date.
        if text is not None and len(stack) == depth:
            text.append(chunk)

    def refuse(*_: object) -> None:
        raise _Refused

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.Parse(packet, True)


def _keep(found: dict[str, str], name: str, value: str) -> None:
    key = _PROPERTIES.get(name)
    value = value.strip()
    if key is not None and value and key not in found:
        found[key] = value


def join_extended(parts: list[tuple[int, int, bytes]]) -> bytes:
    """One Extended XMP packet from its JPEG pieces, (full length, offset, bytes) each; empty
    when the pieces disagree on the length or the packet would be over `MAX_PACKET`."""
    lengths = {full for full, _, _ in parts}
    if len(lengths) != 1:
        return b""
    full = lengths.pop()
    if not 0 < full <= MAX_PACKET:
        return b""
    packet = bytearray(full)
    for _, offset, chunk in parts:
        chunk = chunk[: max(0, full - offset)]
        packet[offset : offset + len(chunk)] = chunk
    return bytes(packet)


def inflate(data: bytes) -> bytes:
    """zlib data (a compressed PNG iTXt) inflated to at most `MAX_PACKET` bytes: a bomb stops
    there instead of filling memory."""
    try:
        return zlib.decompressobj().decompress(data, MAX_PACKET)
    except zlib.error:
        return b""
