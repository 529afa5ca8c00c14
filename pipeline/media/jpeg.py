"""JPEG marker segments, walked from their headers only; and the JPEGs libjpeg cannot decode,
recognised from their frame header so the error says what they are instead of a decoder's
riddle."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from pipeline.media.formats import ImageError, StrPath

_HIERARCHICAL = {0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB} | _HIERARCHICAL
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length follows
_MAX_FILL = 64  # 0xFF fill bytes allowed before a marker


def segments(f: BinaryIO, limit: int) -> Iterator[tuple[int, int]]:
    """(marker, body length) of each segment of the JPEG in `f` (just past its SOI) up to
    the first scan, at most `limit` of them; each is yielded with `f` at its body, which the
    caller may read or not. Stops quietly at anything damaged: the decoder will say so."""
    for _ in range(limit):
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return
        code = marker[1]
        for _ in range(_MAX_FILL):
            if code != 0xFF:
                break
            code = (f.read(1) or b"\xd9")[0]
        if code in (0xDA, 0xD9, 0xFF):  # start of scan (the pixels), end of image, garbage
            return
        if code in _STANDALONE:
            continue
        size = f.read(2)
        if len(size) < 2 or int.from_bytes(size, "big") < 2:
            return
        body = f.tell()
        length = int.from_bytes(size, "big") - 2
        yield code, length
        f.seek(body + length)


def check_jpeg(path: StrPath) -> None:
    """Raise ImageError for a JPEG whose frame header shows a kind libjpeg does not read."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return
            for code, _ in segments(f, limit=512):
                if code not in _SOF:
                    continue
                frame = f.read(5)
                if len(frame) < 5:
                    return
                _, height, _ = struct.unpack(">BHH", frame)
                if code in _HIERARCHICAL:
                    raise ImageError("hierarchical JPEG is not supported")
                if height == 0:
                    raise ImageError(
                        "JPEG whose height is set by a DNL marker: pipe cannot read these"
                        " (re-save it with another program)"
                    )
                return
    except OSError:
        return
