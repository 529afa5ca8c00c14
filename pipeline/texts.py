"""Read a file as text for a model: hash it, decode it safely, and cut it to fit the context."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

SNIFF_BYTES = 8192
CHUNK = 1 << 20


class NotText(Exception):
    """The file should not be sent to a text model (empty, binary); the message says why."""


@dataclass
class LoadedText:
    text: str
    hash: str
    size: int
    notes: list[str] = field(default_factory=list)


def hash_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_text(path: str, max_bytes: int) -> LoadedText:
    """Hash the whole file while keeping only its first `max_bytes` for the prompt."""
    hasher = hashlib.sha256()
    head = bytearray()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            if len(head) < max_bytes:
                head += chunk[: max_bytes - len(head)]
    loaded = decode(bytes(head), complete=size <= max_bytes)
    loaded.hash = hasher.hexdigest()
    loaded.size = size
    if size > max_bytes:
        loaded.notes.append(f"read the first {max_bytes:,} of {size:,} bytes")
    return loaded


def decode(data: bytes, complete: bool = True) -> LoadedText:
    """Bytes to text: UTF-8 (or UTF-16 with a BOM); invalid bytes become U+FFFD and are noted."""
    digest = hashlib.sha256(data).hexdigest() if complete else ""
    if not data.strip():
        raise NotText("empty file")
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    if encoding == "utf-8" and b"\0" in data[:SNIFF_BYTES]:
        raise NotText("binary file (contains NUL bytes)")
    notes: list[str] = []
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        # final=False when cut: a character split at the cut is dropped, not replaced.
        text = decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        text = decoder.decode(data, final=complete)
        notes.append(f"invalid {encoding.upper()} replaced ({text.count(chr(0xFFFD))} places)")
    if encoding != "utf-8":
        notes.append(f"decoded as {encoding.upper()}")
    if not text.strip():
        raise NotText("empty file (only white space)")
    return LoadedText(text=text, hash=digest, size=len(data), notes=notes)


def fit(text: str, room: int, count: Callable[[str], int | None]) -> tuple[str, str | None]:
    """Cut `text` to at most `room` tokens; returns the text and a note when it was cut.

    Every token covers at least one byte, so text within `room` UTF-8 bytes always fits and
    needs no tokenizer call. Longer text is measured with the server's tokenizer (a prefix at
    a time, never the whole of a huge file); without one, it is cut to `room` bytes.
    """
    if room <= 0:
        return "", "no room left for the text in the model's context"
    if len(text.encode("utf-8")) <= room:
        return text, None
    chars = min(len(text), room * 6)
    for _ in range(6):
        candidate = text[:chars]
        tokens = count(candidate)
        if tokens is None:
            break
        if tokens <= room:
            if chars == len(text):
                return text, None
            return _tidy(
                candidate
            ), f"cut to {chars:,} of {len(text):,} characters ({tokens} tokens) to fit the context"
        chars = max(1, int(chars * room / tokens * 0.97))
    cut = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    return _tidy(
        cut
    ), f"cut to {len(cut):,} of {len(text):,} characters (estimated) to fit the context"


def _tidy(cut: str) -> str:
    """End a cut on a word boundary when one is near."""
    space = cut.rfind(" ", int(len(cut) * 0.9))
    return cut[:space] if space > 0 else cut
