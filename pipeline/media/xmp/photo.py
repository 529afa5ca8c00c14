"""A photo's own XMP packets, checked before exiv2 reads the photo: exiv2 reads a broken
packet as empty (writing would drop it) and registers what a packet declares for the rest
of the process (an `xml:` property poisons every later write). pipe's container reader
finds the packets without exiv2; each must pass `fields.check_well_formed`."""

from __future__ import annotations

import os
import stat

from pipeline.media.xmp.fields import XmpError, check_well_formed

MAX_PHOTO_XMP = 16 << 20  # all of a photo's XMP packets together


def check_packets(path: str) -> None:
    """Raise XmpError unless every XMP packet the photo holds is sound and all of them
    together are bounded; OSError when the file cannot be read."""
    from pipeline.media import containers

    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise XmpError("not a regular file")
        packets = containers.scan(f).xmp
    if sum(len(p) for p in packets) > MAX_PHOTO_XMP:
        raise XmpError(f"its XMP packets hold over {MAX_PHOTO_XMP >> 20} MiB")
    for packet in packets:
        check_well_formed(packet)
