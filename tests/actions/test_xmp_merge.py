"""The xmp action merges into the sidecar that is there (darktable's, digiKam's), keeping
every other property, as a second reader (ElementTree over the RDF, not exiv2) reads them;
journaled, so undo puts the user's bytes back; the same content again writes nothing; a
re-run replaces pipe's own keywords; a link, folder or FIFO is still refused."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.actions import replacing, restoring
from pipeline.media.xmp.fields import read_sidecar
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import VISION, opened
from tests.fakes.sidecars import DARKTABLE, DIGIKAM, properties

KEYWORDS = VISION + "[then]\naction = 'xmp'\nfield = 'keywords'\nhierarchy = 'pipe'\n"
GPS = re.compile(r"(\d+),(\d+(?:\.\d+)?)([NSEW])")


def photo(folder: Path, name: str = "p.jpg") -> str:
    (folder / name).write_bytes(b"\xff\xd8 not really a photo")
    return str(folder / name)


def comparable(name: str, value: Any) -> Any:
    """A property's value as a reader compares it: exiv2 writes a GPS coordinate with more
    decimals (43,17.9346N as 43,17.9346000N), the same angle."""
    match = GPS.fullmatch(value) if name.startswith("exif:GPS") and isinstance(value, str) else None
    if match:
        return int(match[1]), round(float(match[2]), 6), match[3]
    return value


def kept(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The properties of `before` that `after` still holds as they were (lists and language
    alternatives may have gained pipe's values)."""
    out = []
    for name, value in before.items():
        now = after.get(name)
        if isinstance(value, list) and isinstance(now, list):
            same = now[: len(value)] == value
        elif isinstance(value, dict) and isinstance(now, dict) and name == "dc:description":
            same = value.items() <= now.items()
        else:
            same = comparable(name, now) == comparable(name, value)
        if same:
            out.append(name)
    return out


def run_of(store: Store) -> int:
    return store.start_run("describe-images", "built-in", [], "u", "m")


def test_a_darktable_sidecar_keeps_all_30_fields(store: Store, folder: Path) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_text(DARKTABLE)
    run_id = run_of(store)
    action, _ = opened("xmp", VISION, store)
    result = Result(path, "done", "A harbour at dawn & a <boat>.")
    action.apply(result)
    assert result.status == "done", result.error
    before, after = properties(DARKTABLE), properties(sidecar.read_bytes())
    assert len(before) == 30
    assert kept(before, after) == list(before)
    assert after["dc:description"]["x-default"] == "A harbour at dawn & a <boat>."
    assert after["darktable:history"][2]["darktable:operation"] == "exposure"
    assert restoring.undo_run(store, run_id)[0].did == "restored"
    assert sidecar.read_text() == DARKTABLE  # byte for byte


def test_keywords_go_into_a_digikam_sidecar_beside_its_tags(store: Store, folder: Path) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_text(DIGIKAM)
    action, _ = opened("xmp", KEYWORDS, store)
    action.apply(Result(path, "done", "dog, beach, Eiffel Tower"))
    after = properties(sidecar.read_bytes())
    assert after["dc:subject"] == ["Beach", "Ann", "dog", "Eiffel Tower"]  # beach is Beach
    assert after["lr:hierarchicalSubject"] == [
        "Places|Beach", "People|Ann", "pipe|dog", "pipe|beach", "pipe|Eiffel Tower",
    ]  # fmt: skip
    before = properties(DIGIKAM)
    assert kept(before, after) == list(before)
    assert after["digiKam:TagsList"] == ["Places/Beach", "People/Ann"]


def test_a_new_answer_replaces_pipes_keywords_not_the_users(store: Store, folder: Path) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_text(DIGIKAM)
    run_of(store)
    action, _ = opened("xmp", KEYWORDS, store)
    action.apply(Result(path, "done", "dog, ball"))
    action.apply(Result(path, "done", "cat, ball"))
    assert properties(sidecar.read_bytes())["dc:subject"] == ["Beach", "Ann", "cat", "ball"]


def test_a_caption_and_keywords_from_two_recipes_merge(store: Store, folder: Path) -> None:
    path = photo(folder)
    run_of(store)
    caption, _ = opened("xmp", VISION, store)
    tags, _ = opened("xmp", KEYWORDS, store)
    caption.apply(Result(path, "done", "A dog on a beach."))
    tags.apply(Result(path, "done", "dog, beach"))
    caption.apply(Result(path, "done", "A dog on the beach."))
    held = read_sidecar((folder / "p.jpg.xmp").read_bytes())
    assert held.description == "A dog on the beach."
    assert held.keywords == ("dog", "beach")
    assert held.hierarchical == ("pipe|dog", "pipe|beach")


def test_the_same_content_again_writes_nothing(store: Store, folder: Path) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_text(DARKTABLE)
    run_of(store)
    action, _ = opened("xmp", KEYWORDS, store)
    action.apply(Result(path, "done", "dog, beach"))
    written = sidecar.stat()
    action.apply(Result(path, "done", "dog, beach"))
    assert sidecar.stat().st_mtime_ns == written.st_mtime_ns
    assert sidecar.stat().st_ino == written.st_ino
    count = store.conn.execute("SELECT COUNT(*) FROM replaced").fetchone()[0]
    assert count == 1


def test_a_dry_run_says_it_would_merge_and_changes_nothing(store: Store, folder: Path) -> None:
    path = photo(folder)
    (folder / "p.jpg.xmp").write_text(DARKTABLE)
    action, out = opened("xmp", VISION, store, dry_run=True)
    action.apply(Result(path, "done", "A dog."))
    assert out.getvalue() == f"{path} -> {path}.xmp (merged)\n"
    assert (folder / "p.jpg.xmp").read_text() == DARKTABLE
    assert store.conn.execute("SELECT COUNT(*) FROM replaced").fetchone()[0] == 0


@pytest.mark.parametrize("kind", ["link", "folder", "fifo"])
def test_a_link_a_folder_or_a_fifo_is_never_replaced(store: Store, folder: Path, kind: str) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    if kind == "link":
        (folder / "elsewhere.xmp").write_text(DARKTABLE)
        sidecar.symlink_to(folder / "elsewhere.xmp")
    elif kind == "folder":
        sidecar.mkdir()
    else:
        os.mkfifo(sidecar)
    action, _ = opened("xmp", VISION, store)
    result = Result(path, "done", "A dog.")
    action.apply(result)
    assert result.status == "failed"
    assert result.error == (
        f"sidecar: {sidecar} exists and is not a regular file; not replacing it"
    )
    if kind == "link":
        assert sidecar.is_symlink() and (folder / "elsewhere.xmp").read_text() == DARKTABLE


def test_a_sidecar_changed_between_read_and_write_is_kept(store: Store, folder: Path) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_text(DARKTABLE)
    run_of(store)
    action, _ = opened("xmp", VISION, store)

    def darktable_writes() -> None:
        sidecar.write_text(DARKTABLE.replace('xmp:Rating="3"', 'xmp:Rating="5"'))

    replacing.between_steps = darktable_writes
    try:
        result = Result(path, "done", "A dog.")
        action.apply(result)
    finally:
        replacing.between_steps = None
    assert result.status == "failed"
    assert result.error == f"sidecar: {sidecar} changed since pipe read it; not replacing it"
    assert 'xmp:Rating="5"' in sidecar.read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["p.jpg", "p.jpg.xmp"]


def test_lightroom_naming_shares_one_sidecar_per_stem(store: Store, folder: Path) -> None:
    """IMG_1.jpg and IMG_1.CR2 share IMG_1.xmp, as in Lightroom: each photo's keywords are
    merged in, and a new answer for one replaces only that photo's."""
    jpg, raw = photo(folder, "IMG_1.jpg"), photo(folder, "IMG_1.CR2")
    run_of(store)
    action, out = opened("xmp", KEYWORDS, store, xmp_sidecar="photo.xmp")
    action.apply(Result(jpg, "done", "dog, beach"))
    action.apply(Result(raw, "done", "dog, sand"))
    action.apply(Result(jpg, "done", "cat, sea"))  # dog stays: the raw says so too
    assert sorted(p.name for p in folder.iterdir()) == ["IMG_1.CR2", "IMG_1.jpg", "IMG_1.xmp"]
    assert read_sidecar((folder / "IMG_1.xmp").read_bytes()).keywords == (
        "dog", "sand", "cat", "sea",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>", "DOCTYPE"),
        (DARKTABLE.encode()[:-40], "not well-formed XML"),
        (b"\x00" * 64, "not well-formed XML"),
        (b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b" " * (5 << 20), "over 4 MiB"),
    ],
    ids=["doctype", "truncated", "nul", "huge"],
)
def test_a_sidecar_pipe_cannot_read_is_kept_with_one_line(
    store: Store, folder: Path, content: bytes, why: str
) -> None:
    path = photo(folder)
    sidecar = folder / "p.jpg.xmp"
    sidecar.write_bytes(content)
    action, _ = opened("xmp", VISION, store)
    result = Result(path, "done", "A dog.")
    action.apply(result)
    assert result.status == "failed" and result.error is not None
    assert why in result.error and "\n" not in result.error, result.error
    assert sidecar.read_bytes() == content


def test_hierarchy_must_be_names_separated_by_bars() -> None:
    from pipeline.errors import RecipeError
    from tests.actions.support import recipe_of

    with pytest.raises(RecipeError) as caught:
        recipe_of(VISION + "[then]\naction = 'xmp'\nfield = 'keywords'\nhierarchy = 'pipe||x'\n")
    assert str(caught.value) == (
        'r.toml: then.hierarchy: expected "" or names separated by "|", e.g. "pipe" or'
        " \"Places|pipe\", got 'pipe||x'"
    )
    with pytest.raises(RecipeError, match="then.field: expected one of description, keywords"):
        recipe_of(VISION + "[then]\naction = 'xmp'\nfield = 'title'\n")


def test_an_answer_without_keywords_makes_no_sidecar(store: Store, folder: Path) -> None:
    path = photo(folder)
    action, _ = opened("xmp", KEYWORDS, store)
    action.apply(Result(path, "done", " , \n"))
    assert sorted(p.name for p in folder.iterdir()) == ["p.jpg"]


def test_prune_deletes_copies_a_killed_run_left_half_made(store: Store, folder: Path) -> None:
    store.replaced.folder.mkdir(parents=True)
    old, new = store.replaced.folder / ".tmp-old", store.replaced.folder / ".tmp-new"
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"y")
    os.utime(old, (0, 0))
    assert restoring.prune(store, []) == 10
    assert not old.exists() and new.exists()  # a running one may be writing it
