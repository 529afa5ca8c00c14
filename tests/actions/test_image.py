"""The image action: each picture saved as a PNG (named by `then.image`) with how it was
drawn in its `parameters` text; never over a file pipe did not write; with a contact sheet,
one picture of them all."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pipeline.actions.image import ImageKeys
from pipeline.answers import Picture
from pipeline.errors import UsageError
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import DRAW, opened, recipe_of


def picture(colour: str = "red", infotext: str = "a fox\nSteps: 4, Seed: 7") -> Picture:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 8), colour).save(buffer, "PNG")
    return Picture.of(buffer.getvalue(), 16, 8, seed=7).with_infotext(infotext)


def prompt_file(folder: Path, name: str = "fox.txt") -> str:
    (folder / name).write_text("a fox\n")
    return str(folder / name)


def test_it_saves_the_picture_with_how_it_was_drawn(store: Store, folder: Path) -> None:
    path = prompt_file(folder)
    action, out = opened("image", DRAW, store)
    result = Result(path, "done", picture())
    action.apply(result)
    target = folder / "fox.txt.png"
    with Image.open(target) as saved:
        assert saved.size == (16, 8)
        assert saved.info["parameters"] == "a fox\nSteps: 4, Seed: 7"
    assert result.output == str(target) and result.status == "done"
    assert out.getvalue() == f"{path} -> {target}\n"


def test_then_image_names_it_and_a_line_is_named_by_its_words(store: Store, folder: Path) -> None:
    path = prompt_file(folder)
    action, _ = opened("image", DRAW + "[then]\nimage = '{stem}-drawn.png'\n", store)
    action.apply(Result(path, "done", picture()))
    assert (folder / "fox-drawn.png").is_file()
    lines, _ = opened("image", DRAW, store, out_dir=str(folder / "out"))
    line = Result("<line 1>", "done", picture(), is_file=False, fields={"text": "A red fox!"})
    lines.apply(line)
    assert line.output == str(folder / "out" / "a-red-fox.png")


def test_two_items_of_one_run_never_share_a_picture(store: Store, folder: Path) -> None:
    a, b = prompt_file(folder, "a.txt"), prompt_file(folder, "b.txt")
    action, _ = opened("image", DRAW + "[then]\nimage = 'same.png'\n", store)
    action.apply(Result(a, "done", picture("red")))
    action.apply(Result(b, "done", picture("blue")))
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt", "same-2.png", "same.png"]


def test_a_dry_run_writes_nothing(store: Store, folder: Path) -> None:
    path = prompt_file(folder)
    action, out = opened("image", DRAW, store, dry_run=True)
    action.apply(Result(path, "done", "a fox, drawn"))  # a dry run draws nothing: the prompt
    action.apply(Result(path, "cached", picture()))
    action.close(1)
    assert [p.name for p in folder.iterdir()] == ["fox.txt"]
    assert out.getvalue() == f"{path} -> {path}.png: a fox, drawn\n"


def test_it_does_not_replace_a_file_it_did_not_write(store: Store, folder: Path) -> None:
    path = prompt_file(folder)
    (folder / "fox.txt.png").write_bytes(b"the user's own picture")
    action, _ = opened("image", DRAW, store)
    result = Result(path, "done", picture())
    action.apply(result)
    assert (folder / "fox.txt.png").read_bytes() == b"the user's own picture"
    assert result.status == "failed"
    assert result.error == (
        f"image: {path}.png exists and was not written by pipe; not replacing it"
    )


def test_a_contact_sheet_is_refused_before_any_drawing(store: Store, folder: Path) -> None:
    with pytest.raises(UsageError, match=r"must be \.jpg, \.png or \.webp"):
        opened("image", DRAW, store, contact_sheet=str(folder / "sheet.gif"))
    (folder / "sheet.jpg").write_bytes(b"someone's sheet")
    with pytest.raises(UsageError, match="--contact-sheet: .* was not written by pipe"):
        opened("image", DRAW, store, contact_sheet=str(folder / "sheet.jpg"))
    assert (folder / "sheet.jpg").read_bytes() == b"someone's sheet"


def test_the_contact_sheet_holds_the_runs_pictures(store: Store, folder: Path) -> None:
    a, b = prompt_file(folder, "a.txt"), prompt_file(folder, "b.txt")
    action, _ = opened("image", DRAW, store, contact_sheet=str(folder / "sheet.png"))
    action.apply(Result(a, "done", picture("red")))
    action.apply(Result(b, "done", picture("blue")))
    action.close(1)
    with Image.open(folder / "sheet.png") as sheet:
        assert sheet.size[0] > 16


def test_then_image_is_parsed_into_the_actions_keys() -> None:
    assert recipe_of(DRAW).then.get(ImageKeys).image.source == "{name}.png"
    custom = recipe_of(DRAW + "[then]\naction = 'image'\nimage = '{text|slug}.png'\n")
    assert custom.then.get(ImageKeys).image.source == "{text|slug}.png"
