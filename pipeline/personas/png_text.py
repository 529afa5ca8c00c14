"""The text chunks of a PNG (tEXt, zTXt, iTXt), read without trusting the file: a character
card from the internet is a PNG whose `chara`/`ccv3` chunk holds the card. Every length is
checked against what is left, CRCs are checked (as png-chunks-extract, which SillyTavern
uses, does), compressed text is inflated within a budget (no zip bombs), and anything wrong
is one `PngTextError` with a one-line reason."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FILE = 32 << 20  # a card's picture is a few MB at most
MAX_CHUNKS = 100_000  # a real PNG has tens; many thousands of IDATs are still legitimate
MAX_TEXT = 16 << 20  # all text chunks together, inflated
MAX_KEYWORD = 79  # the PNG spec's limit


class PngTextError(ValueError):
    """The bytes are not a readable PNG, or a text chunk in it is broken; one line."""


def text_chunks(data: bytes) -> dict[str, str]:
    """keyword -> text of every text chunk, in file order. The first chunk with a keyword
    wins, as SillyTavern's `findIndex` over the chunks picks the first."""
    if len(data) > MAX_FILE:
        raise PngTextError(f"over {MAX_FILE >> 20} MB")
    if not data.startswith(SIGNATURE):
        raise PngTextError("not a PNG (no PNG signature)")
    found: dict[str, str] = {}
    budget = MAX_TEXT
    for kind, start, end in _chunks(data):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        keyword, text = _decode(kind, data[start:end], budget)
        budget -= len(text)
        found.setdefault(keyword, text)
    return found


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk's data up to IEND; lengths and CRCs checked."""
    at = len(SIGNATURE)
    view = memoryview(data)
    for _ in range(MAX_CHUNKS):
        if at + 8 > len(data):
            raise PngTextError("truncated PNG (no IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, at)
        start = at + 8
        end = start + length
        if end + 4 > len(data):
            raise PngTextError(f"truncated PNG (a chunk of {length} bytes at byte {at})")
        if not kind.isalpha():
            raise PngTextError(f"broken PNG (a chunk type that is not letters at byte {at})")
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(view[at + 4 : end]) != crc:
            raise PngTextError(f"corrupt PNG (bad CRC of the {_name(kind)} chunk at byte {at})")
        if kind == b"IEND":
            return
        yield kind, start, end
        at = end + 4
    raise PngTextError(f"more than {MAX_CHUNKS} chunks")


def _name(kind: bytes) -> str:
    return kind.decode("ascii", "replace")


def _decode(kind: bytes, body: bytes, budget: int) -> tuple[str, str]:
    keyword_end = body.find(b"\0")
    if keyword_end < 1 or keyword_end > MAX_KEYWORD:
        raise PngTextError(f"broken {_name(kind)} chunk (no keyword of 1-{MAX_KEYWORD} bytes)")
    keyword = body[:keyword_end].decode("latin-1")
    rest = body[keyword_end + 1 :]
    if kind == b"tEXt":
        text = rest.decode("latin-1")
    elif kind == b"zTXt":
        if rest[:1] != b"\0":
            raise PngTextError(f"broken zTXt chunk {keyword!r} (unknown compression)")
        text = _inflate(rest[1:], budget, keyword).decode("latin-1")
    else:
        text = _itxt(rest, budget, keyword)
    if len(text) > budget:
        raise PngTextError(f"text chunks over {MAX_TEXT >> 20} MB")
    return keyword, text


def _itxt(rest: bytes, budget: int, keyword: str) -> str:
    """iTXt after the keyword: flag, method, language NUL, translated keyword NUL, text."""
    if len(rest) < 2 or rest[0] not in (0, 1) or rest[1] != 0:
        raise PngTextError(f"broken iTXt chunk {keyword!r} (bad compression fields)")
    compressed = rest[0] == 1
    language_end = rest.find(b"\0", 2)
    translated_end = rest.find(b"\0", language_end + 1) if language_end >= 0 else -1
    if translated_end < 0:
        raise PngTextError(f"broken iTXt chunk {keyword!r} (missing language fields)")
    raw = rest[translated_end + 1 :]
    if compressed:
        raw = _inflate(raw, budget, keyword)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PngTextError(f"broken iTXt chunk {keyword!r} (not UTF-8 at byte {e.start})") from None


def _inflate(raw: bytes, budget: int, keyword: str) -> bytes:
    """zlib data inflated to at most `budget` bytes: more is an error, not a bigger buffer."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, budget + 1)
    except zlib.error as e:
        raise PngTextError(f"broken compressed text {keyword!r} ({e})") from None
    if len(out) > budget:
        raise PngTextError(f"text chunks over {MAX_TEXT >> 20} MB inflated")
    if not inflater.eof:
        raise PngTextError(f"broken compressed text {keyword!r} (truncated)")
    return out
