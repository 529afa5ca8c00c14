"""An atheris harness for the XMP merge: any bytes as an existing sidecar give new sidecar
bytes that read back with pipe's fields, or XmpError (one line), nothing else; exiv2 parses
them in C++, so a crash here would be a crash of a run over a hostile folder.

    pip install atheris
    PYTHONPATH=. python tests/media/fuzz_xmp_fields.py -max_total_time=300 -rss_limit_mb=1024

Not collected by pytest (no test_ prefix); test_xmp_fields.py checks the refusals."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pipeline.media.xmp.fields import XmpError, XmpFields, merge_sidecar, read_sidecar

FIELDS = XmpFields(description="A dog", keywords=("dog", "beach"))
SEED = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    b' xmp:Rating="3"><dc:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def one(data: bytes) -> None:
    for candidate in (data, SEED[: len(data) % len(SEED)] + data):
        try:
            out = merge_sidecar(candidate, FIELDS, XmpFields(keywords=("holiday",)))
        except XmpError as e:
            assert "\n" not in str(e), e
            continue
        back = read_sidecar(out)
        assert back.description == "A dog" and back.keywords is not None, back
        assert {"dog", "beach"} <= set(back.keywords), back
    # Nothing a file held changed exiv2 for the files after it (its namespace registry is
    # process-wide).
    assert read_sidecar(merge_sidecar(SEED, FIELDS)).keywords == ("holiday", "dog", "beach")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
