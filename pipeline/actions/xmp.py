"""Write each answer as the photo's description in an XMP sidecar (photo.jpg.xmp); the
packet itself is built in `pipeline/media/xmp/write.py`."""

from __future__ import annotations

from pipeline.actions.keys import Needs
from pipeline.actions.sidecar import Sidecar
from pipeline.media.xmp.write import XmpFields, packet


class XmpSidecar(Sidecar):
    """`photo.jpg.xmp` (the darktable/digiKam convention: one sidecar per file, never
    shared with a raw file of the same stem) with the answer as dc:description."""

    name = "xmp"
    then_keys = None  # its name is the photo's: then.sidecar is not for it
    needs = Needs(answer="text", photos=True)  # an XMP sidecar describes a photo

    def target(self, path: str) -> str:
        return path + ".xmp"

    def content(self, answer: str) -> str:
        return packet(self.fields(answer))

    def fields(self, answer: str) -> XmpFields:
        """What this action writes into the sidecar for an answer."""
        return XmpFields(description=answer.strip())
