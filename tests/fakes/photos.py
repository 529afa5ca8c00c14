"""Photos as cameras write them: a Multi-Picture JPEG (MPO) with typed frames after the
primary image, e.g. the large preview a camera stores beside a 24 MP photo."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from PIL import Image

LARGE_THUMBNAIL_FULL_HD = 0x010002  # MP Type codes (CIPA DC-007)
UNDEFINED = 0x000000


def save_with_frames(
    path: str | Path, primary: Image.Image, frames: list[tuple[Image.Image, int]], **save: Any
) -> Path:
    """Save a Multi-Picture JPEG: `primary` plus (image, MP Type) frames after it.

    Pillow writes every extra frame as type Undefined; cameras mark theirs, so the types are
    patched into the MP Index afterwards (little-endian TIFF, entries of 16 bytes).
    """
    path = Path(path)
    primary.save(path, "MPO", save_all=True, append_images=[im for im, _ in frames], **save)
    data = bytearray(path.read_bytes())
    base = data.index(b"MPF\x00") + 4  # MPF offsets count from this TIFF header
    assert data[base : base + 2] == b"II"
    (ifd,) = struct.unpack_from("<I", data, base + 4)
    (count,) = struct.unpack_from("<H", data, base + ifd)
    for i in range(count):
        tag, _, _, value = struct.unpack_from("<HHII", data, base + ifd + 2 + 12 * i)
        if tag == 0xB002:  # MP Entry: attribute, size, offset, dependents
            for frame, (_, mp_type) in enumerate(frames, start=1):
                struct.pack_into("<I", data, base + value + 16 * frame, mp_type)
    path.write_bytes(data)
    return path
