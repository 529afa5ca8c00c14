"""The embedded action: each answer into the photo's own XMP and IPTC through a checked
copy renamed over it (journaled, so undone byte for byte); a dry run writes nothing; a
photo that cannot be written fails alone, in one line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.actions import restoring
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import VISION, opened
from tests.conftest import CORPUS
from tests.media.second_reader import iptc_keywords, pixels, xmp_fields

HISTORY = ("fingerprint", "error", "note", "duration_ms", "prompt_tokens", "completion_tokens")
HISTORY += ("attempts", "meta")
KEYWORDS = VISION + "[then]\nfield = 'keywords'\n"


def _photo(folder: Path, name: str = "DSCN0029.jpg") -> Path:
    path = folder / name
    shutil.copy(CORPUS / "gps" / "DSCN0029.jpg", path)
    return path


def _run(store: Store) -> int:
    return store.start_run("r", "test", [], "fake", "m")


def test_the_caption_goes_into_the_photo_and_undo_restores_it(store: Store, folder: Path) -> None:
    photo = _photo(folder)
    before, mtime, seen = photo.read_bytes(), photo.stat().st_mtime_ns, pixels(photo)
    run = _run(store)
    action, out = opened("embedded", VISION, store)
    result = Result(str(photo), "done", "  A quiet street at dusk.\n")

    action.apply(result)

    assert result.status == "done", result.error
    assert photo.read_bytes() != before and pixels(photo) == seen
    assert xmp_fields(photo)[0] == "A quiet street at dusk."
    assert photo.stat().st_mtime_ns == mtime  # kept: photo managers sort by it
    assert result.rewritten == (photo.stat().st_size, mtime)
    assert sorted(os.listdir(folder)) == ["DSCN0029.jpg"]
    assert out.getvalue() == ""

    [undone] = restoring.undo_run(store, run)
    assert undone.state == "undone" and photo.read_bytes() == before


def test_keywords_replace_pipes_own_and_keep_the_users(store: Store, folder: Path) -> None:
    photo = folder / "BlueSquare.jpg"
    shutil.copy(CORPUS / "xmp" / "BlueSquare.jpg", photo)
    own = ["XMP", "Blue Square", "test file", "Photoshop", ".jpg"]
    _run(store)
    action, _ = opened("embedded", KEYWORDS, store)
    action.apply(Result(str(photo), "done", "dog, beach"))
    action.apply(Result(str(photo), "done", "cat, beach"))  # pipe's "dog" goes
    assert xmp_fields(photo)[1] == [*own, "cat", "beach"]
    assert iptc_keywords(photo) == [*own, "cat", "beach"]


def test_the_same_answer_again_writes_nothing(store: Store, folder: Path) -> None:
    photo = _photo(folder)
    _run(store)
    action, _ = opened("embedded", KEYWORDS, store)
    action.apply(Result(str(photo), "done", "street, dusk"))
    after, st = photo.read_bytes(), photo.stat()
    again = Result(str(photo), "skipped", "street, dusk")
    action.apply(again)
    assert again.rewritten is None and again.status == "skipped"
    assert photo.read_bytes() == after and photo.stat().st_ino == st.st_ino


def test_a_dry_run_says_what_it_would_write(store: Store, folder: Path) -> None:
    photo = _photo(folder)
    png = folder / "b.png"
    shutil.copy(CORPUS / "xmp" / "BlueSquare.jpg", folder / "tmp.jpg")
    from PIL import Image

    with Image.open(folder / "tmp.jpg") as im:
        im.save(png)
    os.unlink(folder / "tmp.jpg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    action, out = opened("embedded", KEYWORDS, store, dry_run=True)
    action.apply(Result(str(photo), "done", "street, dusk, lamp"))
    action.apply(Result(str(png), "done", "blue"))
    assert out.getvalue() == (
        f"{photo}: would embed 3 keywords (XMP, IPTC)\n{png}: would embed 1 keyword (XMP)\n"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_format_exiv2_cannot_write_fails_the_item_alone(
    store: Store, folder: Path, dry_run: bool
) -> None:
    gif = folder / "a.gif"
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(gif)
    photo = _photo(folder)
    _run(store)
    action, _ = opened("embedded", VISION, store, dry_run=dry_run)
    bad, good = Result(str(gif), "done", "red"), Result(str(photo), "done", "A street.")
    action.apply(bad)
    action.apply(good)
    assert bad.status == "failed"
    assert bad.error == "embedded: exiv2 cannot write metadata into GIF; use --write xmp"
    assert good.status == "done"
    assert (xmp_fields(photo)[0] == "A street.") is not dry_run


def test_a_photo_changed_meanwhile_is_not_replaced(
    store: Store, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check between the copy and the rename: the user's edit wins."""
    from pipeline.actions import embedded

    photo = _photo(folder)
    _run(store)
    action, _ = opened("embedded", VISION, store)
    real = embedded.replace_journaled

    def edited_first(*args: Any, **kwargs: Any) -> None:
        with open(photo, "ab") as f:
            f.write(b"edited")
        real(*args, **kwargs)

    monkeypatch.setattr(embedded, "replace_journaled", edited_first)
    result = Result(str(photo), "done", "A street.")
    action.apply(result)
    assert result.status == "failed" and "changed since pipe read it" in (result.error or "")
    assert photo.read_bytes().endswith(b"edited")
    assert sorted(os.listdir(folder)) == ["DSCN0029.jpg"]


def test_then_hierarchy_adds_hierarchical_keywords(store: Store, folder: Path) -> None:
    import xml.etree.ElementTree as ET

    from tests.media.second_reader import RDF, xmp_packet

    photo = _photo(folder)
    _run(store)
    action, _ = opened("embedded", KEYWORDS + "hierarchy = 'pipe'\n", store)
    action.apply(Result(str(photo), "done", "street, dusk"))
    root = ET.fromstring(xmp_packet(photo).strip(b"\x00 \n"))
    lr = "{http://ns.adobe.com/lightroom/1.0/}hierarchicalSubject"
    found = [li.text for h in root.iter(lr) for li in h.iter(f"{RDF}li")]
    assert found == ["pipe|street", "pipe|dusk"]
    assert xmp_fields(photo)[1] == ["street", "dusk"]


def test_every_recipe_finished_on_the_photo_stays_finished(store: Store, folder: Path) -> None:
    """pipe's own write changes no pixel: no recipe (this one or another that read the same
    photo) redoes it, else two recipes writing one photo would redo each other forever."""
    from pipeline.paths import display_path

    photo = _photo(folder)
    st, key = photo.stat(), display_path(str(photo))
    run = _run(store)
    history = dict.fromkeys(HISTORY) | {"status": "done", "started": "2026-12-03T00:00:00"}
    for recipe in ("tag-images", "describe-images"):
        store.claim(recipe, key, run, st.st_size, st.st_mtime_ns, "k", False)
        store.finish(recipe, key, run, status="done", size=st.st_size, mtime_ns=st.st_mtime_ns,
                     hash="h", ask_key="k", fingerprint=None, reason=None, attempts=1,
                     history=history, cache_rows=[])  # fmt: skip
    action, _ = opened("embedded", VISION, store)
    result = Result(str(photo), "skipped", "A street.")
    action.apply(result)
    now = photo.stat()
    assert now.st_size != st.st_size and result.rewritten == (now.st_size, now.st_mtime_ns)
    for recipe in ("tag-images", "describe-images"):
        row, _ = store.item_and_answer(recipe, key)
        assert row is not None and row.is_finished(now.st_size, now.st_mtime_ns, "k"), recipe


def test_a_dry_run_over_a_photo_that_holds_them_says_so(store: Store, folder: Path) -> None:
    photo = _photo(folder)
    _run(store)
    action, _ = opened("embedded", KEYWORDS, store)
    action.apply(Result(str(photo), "done", "street, dusk"))
    dry, out = opened("embedded", KEYWORDS, store, dry_run=True)
    dry.apply(Result(str(photo), "skipped", "street, dusk"))
    assert out.getvalue() == f"{photo}: would embed nothing: it holds them already\n"
