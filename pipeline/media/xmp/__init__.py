"""XMP, read and written in one place: `read` takes the date properties out of a photo's
packet (untrusted input), `write` builds the packet of an XMP sidecar from the fields to
write. A later merge of an existing sidecar's fields (the photo library) reads with one and
writes with the other.
"""

from __future__ import annotations

from pipeline.media.xmp.read import MAX_PACKET, inflate, join_extended, read_properties
from pipeline.media.xmp.write import XmpFields, packet, xml_escape

__all__ = [
    "MAX_PACKET",
    "XmpFields",
    "inflate",
    "join_extended",
    "packet",
    "read_properties",
    "xml_escape",
]
