"""The xmp action: each answer as the photo's dc:description in `photo.jpg.xmp`, the packet
built by `media/xmp/write.py` for a sidecar of pipe's own; merged into any other sidecar
(tests/actions/test_xmp_merge.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.media import xmp
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import TEXT, VISION, opened, recipe_of

# The packet as pipe has always written it (photo managers read it; a re-run compares it).
PACKET = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
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


def photo(folder: Path, name: str = "p.jpg") -> str:
    (folder / name).write_bytes(b"\xff\xd8 not really a photo")
    return str(folder / name)


def test_it_writes_the_answer_as_the_description(store: Store, folder: Path) -> None:
    path = photo(folder)
    action, out = opened("xmp", VISION, store)
    action.apply(Result(path, "done", '  A dog & a <cat> say "hi"\x07.\n'))
    written = (folder / "p.jpg.xmp").read_bytes()
    expected = PACKET.format(description="A dog &amp; a &lt;cat&gt; say &quot;hi&quot;.")
    assert written == expected.encode()
    assert out.getvalue() == ""


def test_the_packet_holds_only_the_fields_given() -> None:
    assert xmp.packet(xmp.XmpFields(description="x")) == PACKET.format(description="x")
    empty = xmp.packet(xmp.XmpFields())
    assert "dc:description" not in empty and empty.endswith('<?xpacket end="w"?>\n')


def test_a_dry_run_says_where_and_writes_nothing(store: Store, folder: Path) -> None:
    path = photo(folder)
    action, out = opened("xmp", VISION, store, dry_run=True)
    action.apply(Result(path, "done", "A dog."))
    assert out.getvalue() == f"{path} -> {path}.xmp\n"
    assert [p.name for p in folder.iterdir()] == ["p.jpg"]


def test_a_sidecar_exiv2_cannot_read_fails_the_item_and_is_kept(store: Store, folder: Path) -> None:
    path = photo(folder)
    (folder / "p.jpg.xmp").write_text("<x:xmpmeta>darktable's edits</x:xmpmeta>")
    action, _ = opened("xmp", VISION, store)
    result = Result(path, "done", "A dog.")
    action.apply(result)
    assert (folder / "p.jpg.xmp").read_text() == "<x:xmpmeta>darktable's edits</x:xmpmeta>"
    assert result.status == "failed"
    # (as a sidecar: the xmp action is one, its errors have always said so)
    assert result.error is not None and "\n" not in result.error
    assert result.error.startswith(f"sidecar: {path}.xmp: ")
    assert result.error.endswith("; not replacing it")


def test_it_replaces_its_own_sidecar(store: Store, folder: Path) -> None:
    path = photo(folder)
    action, _ = opened("xmp", VISION, store)
    action.apply(Result(path, "done", "A dog."))
    action.apply(Result(path, "done", "A cat."))
    assert (folder / "p.jpg.xmp").read_text() == PACKET.format(description="A cat.")


def test_xmp_has_no_keys_and_needs_a_recipe_that_reads_photos() -> None:
    assert recipe_of(VISION + "[then]\naction = 'xmp'\n").action == "xmp"
    with pytest.raises(RecipeError, match="'xmp' describes photos"):
        recipe_of(TEXT + "[then]\naction = 'xmp'\n")
