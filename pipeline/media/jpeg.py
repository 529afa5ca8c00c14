"""JPEGs that libjpeg cannot decode, recognised from their frame header so the error says
what they are instead of a decoder's riddle."""

from __future__ import annotations

import struct

from pipeline.media.formats import ImageError, StrPath

_HIERARCHICAL = {0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB} | _HIERARCHICAL
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length follows
_MAX_SEGMENTS = 512


def check_jpeg(path: StrPath) -> None:
    """Raise ImageError for a JPEG whose frame header shows a kind libjpeg does not read."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return
            for _ in range(_MAX_SEGMENTS):
                marker = f.read(2)
                while marker[:1] == b"\xff" and marker[1:] == b"\xff":  # fill bytes
                    marker = marker[1:] + f.read(1)
                if len(marker) < 2 or marker[0] != 0xFF:
                    return  # damaged: the decoder will say so
                kind = marker[1]
                if kind in _STANDALONE:
                    continue
                header = f.read(2)
                if len(header) < 2:
                    return
                (length,) = struct.unpack(">H", header)
                if kind in _SOF:
                    frame = f.read(5)
                    if len(frame) < 5:
                        return
                    _, height, _ = struct.unpack(">BHH", frame)
                    if kind in _HIERARCHICAL:
                        raise ImageError("hierarchical JPEG is not supported")
                    if height == 0:
                        raise ImageError(
                            "JPEG whose height is set by a DNL marker: pipe cannot read these"
                            " (re-save it with another program)"
                        )
                    return
                if kind in (0xD9, 0xDA) or length < 2:  # end of image or first scan: no frame
                    return
                f.seek(length - 2, 1)
    except OSError:
        return
