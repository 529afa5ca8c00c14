"""pipe's fields in IPTC IIM, the older block most photo managers still read beside XMP:
the caption (2:120, at most 2,000 bytes) and keywords (2:25, repeated, at most 64 bytes
each), both cut on a UTF-8 character boundary, and the record's character set declared
UTF-8 (1:90 = ESC % G), without which readers guess Latin-1.

Keywords merge as in XMP (`fields.merged`): the photo's, less what pipe wrote before, plus
the new ones. Text an older tool left in Latin-1 (bytes that are not UTF-8, no character
set declared) is re-encoded as UTF-8, so declaring UTF-8 does not garble it.
"""

from __future__ import annotations

from typing import Any

from pipeline.media.xmp.fields import XmpFields, merged, xml_text

CAPTION = "Iptc.Application2.Caption"
KEYWORDS = "Iptc.Application2.Keywords"
CHARSET = "Iptc.Envelope.CharacterSet"
UTF8 = "\x1b%G"
MAX_CAPTION = 2000  # bytes, as IIM 4.2 bounds dataset 2:120
MAX_KEYWORD = 64  # bytes, dataset 2:25


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` bytes of UTF-8, cut between characters."""
    return text.encode()[:limit].decode("utf-8", "ignore").rstrip()


def keywords(data: Any) -> list[str]:
    return [d.toString() for d in data if d.key() == KEYWORDS]


def caption(data: Any) -> str | None:
    found = [d.toString() for d in data if d.key() == CAPTION]
    return found[0] if found else None


def apply_iptc(data: Any, fields: XmpFields, previous: XmpFields | None = None) -> None:
    """Set pipe's fields in exiv2's IptcData, keeping every other dataset."""
    if data.detectCharset() is None:  # bytes that are not UTF-8: an older tool's Latin-1
        _to_utf8(data)
    _set(data, CHARSET, [UTF8])
    if fields.description is not None:
        _set(data, CAPTION, [cut(xml_text(fields.description), MAX_CAPTION)])
    if fields.keywords is not None:
        _set(data, KEYWORDS, expected(fields, keywords(data), previous))


def expected(fields: XmpFields, existing: list[str], previous: XmpFields | None) -> list[str]:
    """The keywords the photo's IPTC holds once pipe's are set (for the read-back check)."""
    old = [cut(k, MAX_KEYWORD) for k in previous.keywords or ()] if previous else []
    new = [cut(xml_text(k), MAX_KEYWORD) for k in fields.keywords or ()]
    return merged(existing, new, old)


def _set(data: Any, key: str, values: list[str]) -> None:
    """Replace every dataset `key` by `values`, in order."""
    import exiv2

    while (found := data.findKey(exiv2.IptcKey(key))) != data.end():
        data.erase(found)
    for value in values:
        datum = exiv2.Iptcdatum(exiv2.IptcKey(key))
        datum.setValue(value)
        data.add(datum)


def _to_utf8(data: Any) -> None:
    """Re-encode, as UTF-8, the text datasets that are not UTF-8 (read as Latin-1)."""
    import exiv2

    for datum in data:
        if datum.typeId() != exiv2.TypeId.string:
            continue
        text = datum.toString()  # python-exiv2 keeps bytes that are not UTF-8 as surrogates
        raw = text.encode("utf-8", "surrogateescape")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            datum.setValue(raw.decode("latin-1"))
