"""pipe's XMP fields set into XMP that holds anything else (pipeline/media/xmp/fields.py),
read back by a second reader (ElementTree), not only by exiv2 itself."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest

from pipeline.media.xmp.fields import XmpError, XmpFields, merge_sidecar, read_sidecar

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
DARKTABLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="3"
   darktable:history_end="1">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:params="0000803f"/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>old-pipe</rdf:li></rdf:Bag></dc:subject>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">old</rdf:li>
    <rdf:li xml:lang="de-DE">alt</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def test_pipes_fields_merge_into_a_darktable_sidecar() -> None:
    fields = XmpFields(description="A dog & <a ball>\x00", keywords=("dog", "Holiday", "beach"))
    out = merge_sidecar(DARKTABLE, fields, XmpFields(keywords=("old-pipe",)))
    root = ET.fromstring(out)
    description = root.find(f".//{RDF}Description")
    assert description is not None
    texts = {
        li.get("{http://www.w3.org/XML/1998/namespace}lang"): li.text
        for li in description.iter(f"{RDF}li")
        if li.get("{http://www.w3.org/XML/1998/namespace}lang")
    }
    assert texts == {"x-default": "A dog & <a ball>", "de-DE": "alt"}
    subject = description.find(f"{DC}subject")
    assert subject is not None
    assert [li.text for li in subject.iter(f"{RDF}li")] == ["holiday", "dog", "beach"]
    # darktable's own fields are all still there.
    assert description.get("{http://ns.adobe.com/xap/1.0/}Rating") == "3"
    operations = [li.get("{http://darktable.sf.net/}operation") for li in root.iter(f"{RDF}li")]
    assert "exposure" in operations
    assert read_sidecar(out).keywords == ("holiday", "dog", "beach")


def test_a_new_sidecar_holds_only_pipes_fields() -> None:
    out = merge_sidecar(None, XmpFields(description="Sunset", keywords=("sun",)))
    assert read_sidecar(out) == XmpFields(description="Sunset", keywords=("sun",))


@pytest.mark.parametrize(
    "broken",
    [
        b"<x:xmpmeta><broken",
        b'<!DOCTYPE x [<!ENTITY a "b">]><x/>',
        b'<?xml version="1.0" encoding="UTF-6"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
        b'<?xml version="1.0" encoding="UTF-7"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
        b"",
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description>'
        b"<dc:subject>x</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>",
    ],
)
def test_a_sidecar_exiv2_cannot_read_is_refused_not_replaced(broken: bytes) -> None:
    with pytest.raises(XmpError):
        merge_sidecar(broken, XmpFields(description="x"))


def test_a_property_in_the_xml_namespace_is_refused_before_exiv2_sees_it() -> None:
    """exiv2 would register `xml` for a wrong URI for the rest of the process (found by
    fuzzing): the sidecar is refused, and the next sidecar is still written readable."""
    odd = DARKTABLE.replace(b'xmp:Rating="3"', b'xml:odd="x" xmp:Rating="3"')
    with pytest.raises(XmpError, match="xml:odd"):
        merge_sidecar(odd, XmpFields(description="x"))
    assert read_sidecar(merge_sidecar(DARKTABLE, XmpFields(description="y"))).description == "y"


def test_a_prefix_exiv2_knows_bound_elsewhere_is_refused() -> None:
    """exiv2 would keep `dc` bound to the file's URI for the rest of the process, and write
    pipe's captions under it (found by fuzzing)."""
    odd = DARKTABLE.replace(b"http://purl.org/dc/elements/1.1/", b"http://example.com/dc/")
    with pytest.raises(XmpError, match="binds dc: to 'http://example.com/dc/'"):
        merge_sidecar(odd, XmpFields(description="x"))
    root = ET.fromstring(merge_sidecar(None, XmpFields(description="y")))
    assert root.find(f".//{DC}description") is not None


def test_exiv2_is_itself_again_after_a_file_that_rebinds_a_prefix_it_knows() -> None:
    """A sidecar binding xmp: to a broken URI broke exiv2's namespace map for every sidecar
    after it (found by fuzzing); pipe starts exiv2's XMP toolkit afresh."""
    odd = DARKTABLE.replace(
        b"http://ns.adobe.com/xap/1.0/", b"htt\x7f\x7fp://ns.adobe.com/xap/0.0/"
    )
    with contextlib.suppress(XmpError):
        merge_sidecar(odd, XmpFields(description="x"))
    merged = merge_sidecar(DARKTABLE, XmpFields(description="y"))
    root = ET.fromstring(merged)
    assert root.find(f".//{RDF}Description").get("{http://ns.adobe.com/xap/1.0/}Rating") == "3"
