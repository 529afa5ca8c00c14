"""Write each answer as the photo's description in an XMP sidecar (photo.jpg.xmp)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from pipeline.actions.keys import Needs
from pipeline.actions.sidecar import Sidecar


class XmpSidecar(Sidecar):
    """`photo.jpg.xmp` (the darktable/digiKam convention: one sidecar per file, never
    shared with a raw file of the same stem) with the answer as dc:description."""

    name = "xmp"
    then_keys = None  # its name is the photo's: then.sidecar is not for it
    needs = Needs(answer="text", photos=True)  # an XMP sidecar describes a photo

    def target(self, path: str) -> str:
        return path + ".xmp"

    def content(self, answer: str) -> str:
        return XMP_TEMPLATE.format(description=xml_escape(answer.strip()))


XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="pipe">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{description}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def xml_escape(text: str) -> str:
    """Escape for XML text, dropping characters XML 1.0 cannot hold (model output may
    contain any of them)."""
    allowed = "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)
    return escape(allowed, {'"': "&quot;"})
