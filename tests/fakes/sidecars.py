"""XMP sidecars as photo managers write them, and a second XMP reader (ElementTree over the
RDF, not exiv2) to check what pipe's merge kept.

`DARKTABLE`: a darktable 4 sidecar with 30 properties (exif, xmp, xmpMM, dc, lr and
darktable's own: its history and masks as sequences of structs, attributes on `rdf:li`).
`DIGIKAM`: a digiKam sidecar (its namespace, TagsList, labels, MicrosoftPhoto's keywords).
Both are made for the tests in the shape those programs write (no real file's content).
`properties(data)` reads any RDF/XML packet into {qualified name: plain value}, whatever
form a property takes (an attribute, an element, `rdf:parseType="Resource"`, a nested
`rdf:Description`), so a packet exiv2 rewrote compares equal to the one it read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
NAMES = {
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://darktable.sf.net/": "darktable",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/lightroom/1.0/": "lr",
    "http://www.digikam.org/ns/1.0/": "digiKam",
    "http://ns.microsoft.com/photo/1.0/": "MicrosoftPhoto",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    RDF: "rdf",
}

_HISTORY_ITEM = (
    '      <rdf:li darktable:num="{n}" darktable:operation="{op}" darktable:enabled="1"'
    ' darktable:modversion="{v}" darktable:params="{params}" darktable:multi_name=""'
    ' darktable:multi_name_hand_edited="0" darktable:multi_priority="0"'
    ' darktable:blendop_version="13"'
    ' darktable:blendop_params="gz11eJxjYGBgkGAAgRNODGiAEQEAQ9gD"/>\n'
)
_HISTORY = "".join(
    _HISTORY_ITEM.format(n=n, op=op, v=v, params=params)
    for n, (op, v, params) in enumerate(
        [
            ("rawprepare", 2, "000000000000000000000000ff3f0000"),
            ("temperature", 3, "0000803f0000803f0000803f0000807f"),
            ("exposure", 6, "00000000000080b9cdcccc3e00004842"),
            ("colorin", 7, "gz48eJzjZBgFo2AU0AsAAANwAAE="),
            ("filmicrgb", 6, "gz10eJxjYGBgYAJiBicGCHBiQAYs"),
            ("retouch", 3, "gz12eJztk0tKA0EQhqs6r8dMgo"),
        ]
    )
)

DARKTABLE = f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
   exif:DateTimeOriginal="2023:05:01 10:12:13.250"
   exif:GPSLatitude="43,17.9346N"
   exif:GPSLongitude="5,22.4107E"
   exif:GPSAltitude="1250/10"
   xmp:Rating="3"
   xmp:Label="Red"
   xmpMM:DerivedFrom="DSCN0010.jpg"
   xmpMM:PreservedFileName="DSCN0010.NEF"
   darktable:import_timestamp="63817726333000000"
   darktable:change_timestamp="63817726999000000"
   darktable:export_timestamp="0"
   darktable:print_timestamp="0"
   darktable:xmp_version="5"
   darktable:raw_params="0"
   darktable:auto_presets_applied="1"
   darktable:iop_order_version="4"
   darktable:history_basic_hash="3e0ea2f8a1b1cd2ee3b2f41da48e9a06"
   darktable:history_auto_hash="ad4a1f6f60c1bdb5e4b6e0a0f1d2c3b4"
   darktable:history_current_hash="0c2c3d42a19a5bd6e1f7a8b9c0d1e2f3"
   darktable:history_end="6"
   darktable:iop_order_list="rawprepare,0,temperature,0,exposure,0,colorin,0,filmicrgb,0">
   <darktable:masks_history>
    <rdf:Seq>
     <rdf:li darktable:mask_num="5" darktable:mask_id="1700000001" darktable:mask_type="1"
      darktable:mask_name="circle #1" darktable:mask_version="6"
      darktable:mask_points="0000003f0000003fcdcc4c3d0ad7233c"
      darktable:mask_nb="1" darktable:mask_src="0000803e0000803e"/>
     <rdf:li darktable:mask_num="5" darktable:mask_id="1700000002" darktable:mask_type="12"
      darktable:mask_name="grp retouch" darktable:mask_version="6"
      darktable:mask_points="01efa16500000000" darktable:mask_nb="1"
      darktable:mask_src="0000000000000000"/>
    </rdf:Seq>
   </darktable:masks_history>
   <darktable:history>
    <rdf:Seq>
{_HISTORY}    </rdf:Seq>
   </darktable:history>
   <darktable:colorlabels>
    <rdf:Seq>
     <rdf:li>0</rdf:li>
     <rdf:li>2</rdf:li>
    </rdf:Seq>
   </darktable:colorlabels>
   <dc:creator>
    <rdf:Seq>
     <rdf:li>Ann Example</rdf:li>
    </rdf:Seq>
   </dc:creator>
   <dc:rights>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">CC BY 4.0</rdf:li>
    </rdf:Alt>
   </dc:rights>
   <dc:title>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Harbour at dawn</rdf:li>
    </rdf:Alt>
   </dc:title>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="de-DE">Der Hafen im Morgengrauen</rdf:li>
    </rdf:Alt>
   </dc:description>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
     <rdf:li>darktable|format|nef</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>places|harbour</rdf:li>
     <rdf:li>darktable|format|nef</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

DIGIKAM = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:MicrosoftPhoto="http://ns.microsoft.com/photo/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
   digiKam:ColorLabel="4"
   digiKam:PickLabel="2"
   MicrosoftPhoto:Rating="75"
   xmp:Rating="4"
   photoshop:Urgency="1">
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>Places/Beach</rdf:li>
     <rdf:li>People/Ann</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
   <MicrosoftPhoto:LastKeywordXMP>
    <rdf:Bag>
     <rdf:li>Places/Beach</rdf:li>
     <rdf:li>People/Ann</rdf:li>
    </rdf:Bag>
   </MicrosoftPhoto:LastKeywordXMP>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>Places|Beach</rdf:li>
     <rdf:li>People|Ann</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Beach</rdf:li>
     <rdf:li>Ann</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def qualified(tag: str) -> str:
    """`{uri}name` as `prefix:name` (an unknown namespace keeps its URI)."""
    uri, _, name = tag[1:].partition("}")
    return f"{NAMES.get(uri, uri)}:{name}"


def properties(data: bytes | str) -> dict[str, Any]:
    """Every top-level property of every rdf:Description in an XMP packet, as plain values:
    a text, a list (Seq, Bag), a {lang: text} (Alt), a dict (a struct)."""
    root = ET.fromstring(data.encode() if isinstance(data, str) else data)
    found: dict[str, Any] = {}
    for description in root.iter(f"{{{RDF}}}Description"):
        if description in _nested(root):
            continue
        found.update(_fields(description))
    return found


def _nested(root: ET.Element) -> set[ET.Element]:
    """rdf:Descriptions that are a struct's value, not the packet's top level."""
    inner: set[ET.Element] = set()
    for element in root.iter():
        if element.tag != f"{{{RDF}}}RDF":
            for child in element:
                if child.tag == f"{{{RDF}}}Description" and element.tag != f"{{{RDF}}}RDF":
                    inner.add(child)
    return inner


def _fields(element: ET.Element) -> dict[str, Any]:
    """An element's properties: its attributes (not rdf's or xml's) and its children."""
    out: dict[str, Any] = {
        qualified(name): value
        for name, value in element.attrib.items()
        if name.startswith("{") and not name.startswith(f"{{{RDF}}}") and name != XML_LANG
    }
    for child in element:
        out[qualified(child.tag)] = _value(child)
    return out


def _value(element: ET.Element) -> Any:
    """A property element's value, whichever RDF form it is written in."""
    children = list(element)
    if not children:
        if element.get(f"{{{RDF}}}parseType") == "Resource" or _has_fields(element):
            return _fields(element)
        return (element.text or "").strip()
    first = children[0]
    if first.tag == f"{{{RDF}}}Alt":
        return {li.get(XML_LANG, ""): (li.text or "").strip() for li in first}
    if first.tag in (f"{{{RDF}}}Seq", f"{{{RDF}}}Bag"):
        return [_value(li) for li in first]
    if first.tag == f"{{{RDF}}}Description":
        return _fields(first)
    return _fields(element)  # rdf:parseType="Resource": the fields are children


def _has_fields(element: ET.Element) -> bool:
    return any(
        n.startswith("{") and not n.startswith(f"{{{RDF}}}") and n != XML_LANG
        for n in element.attrib
    )
