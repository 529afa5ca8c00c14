"""The packet of an XMP sidecar (`photo.jpg.xmp`), built from the fields to write.

Only the fields pipe sets are written; the packet is the whole file. `XmpFields` is where a
new property goes (keywords as `dc:subject`, say): one field here and its element in
`packet`. A merge with a sidecar already there would read its fields first (`read.py`) and
pass the union here.
"""

from __future__ import annotations

from pipeline.media.xmp.fields import XmpFields

_HEAD = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="pipe">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
"""
_DESCRIPTION = """   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{}</rdf:li>
    </rdf:Alt>
   </dc:description>
"""
_TAIL = """  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def packet(fields: XmpFields) -> str:
    """The sidecar's whole text for `fields`, every value escaped for XML."""
    parts = [_HEAD]
    if fields.description is not None:
        parts.append(_DESCRIPTION.format(xml_escape(fields.description)))
    parts.append(_TAIL)
    return "".join(parts)


def xml_escape(text: str) -> str:
    """Escape for XML text, dropping characters XML 1.0 cannot hold (model output may
    contain any of them)."""
    allowed = "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)
    # As xml.sax.saxutils.escape, which imports urllib (and http) on the way: recipe
    # loading imports this module.
    for char, entity in _ENTITIES:
        allowed = allowed.replace(char, entity)
    return allowed


_ENTITIES = (("&", "&amp;"), (">", "&gt;"), ("<", "&lt;"), ('"', "&quot;"))
