"""The rename action: answers collected during the run, every new name planned at the end
(the whole batch at once), then applied and journalled, or printed by a dry run; never onto
a file that is there."""

from __future__ import annotations

from pathlib import Path

from pipeline.actions.rename import RenameKeys
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import TEXT, opened, recipe_of

STEPS = "[[steps]]\nname = 'title'\nprompt = 'x'\n"


def photos(folder: Path, *names: str) -> list[str]:
    for name in names:
        (folder / name).write_bytes(name.encode())
    return [str(folder / name) for name in names]


def run_id(store: Store) -> int:
    return store.start_run("r", "r.toml", [], "http://fake", "m")


def test_it_renames_at_the_end_of_the_run(store: Store, folder: Path) -> None:
    [path] = photos(folder, "IMG_1.jpg")
    action, out = opened("rename", TEXT, store)
    result = Result(path, "done", "A Red Fox!")
    action.apply(result)
    assert result.deferred and (folder / "IMG_1.jpg").exists()  # nothing moves before close
    action.close(run_id(store))
    assert [p.name for p in folder.iterdir()] == ["a-red-fox.jpg"]
    assert (folder / "a-red-fox.jpg").read_bytes() == b"IMG_1.jpg"
    assert (result.status, result.new_path, result.deferred) == (
        "done",
        str(folder / "a-red-fox.jpg"),
        False,
    )
    assert out.getvalue() == f"{path} -> {folder / 'a-red-fox.jpg'}\n"


def test_a_dry_run_plans_and_moves_nothing(store: Store, folder: Path) -> None:
    [path] = photos(folder, "IMG_1.jpg")
    action, out = opened("rename", TEXT, store, dry_run=True)
    result = Result(path, "done", "fox")
    action.apply(result)
    action.close(run_id(store))
    assert [p.name for p in folder.iterdir()] == ["IMG_1.jpg"]
    assert (result.status, result.new_path) == ("planned", str(folder / "fox.jpg"))
    assert out.getvalue() == f"{path} -> {folder / 'fox.jpg'}\n"


def test_it_never_renames_onto_a_file_that_is_there(store: Store, folder: Path) -> None:
    path, _ = photos(folder, "IMG_1.jpg", "fox.jpg")
    action, _ = opened("rename", TEXT, store)
    result = Result(path, "done", "fox")
    action.apply(result)
    action.close(run_id(store))
    assert (folder / "fox.jpg").read_bytes() == b"fox.jpg"  # the user's file, untouched
    assert (folder / "fox-2.jpg").read_bytes() == b"IMG_1.jpg"
    assert result.new_path == str(folder / "fox-2.jpg")


def test_then_name_builds_the_name_from_the_steps_answers(store: Store, folder: Path) -> None:
    paths = photos(folder, "a.jpg", "b.jpg")
    recipe = STEPS + "[then]\naction = 'rename'\nname = '{title|upper}-{counter:02d}{ext}'\n"
    action, _ = opened("rename", recipe, store)
    for path, title in zip(paths, ("fox", "owl"), strict=True):
        action.apply(Result(path, "done", title, fields={"title": title}))
    action.close(run_id(store))
    assert sorted(p.name for p in folder.iterdir()) == ["FOX-01.jpg", "OWL-02.jpg"]


def test_an_answer_with_nothing_for_a_name_fails_and_is_asked_again(
    store: Store, folder: Path
) -> None:
    [path] = photos(folder, "IMG_1.jpg")
    action, _ = opened("rename", TEXT, store)
    result = Result(path, "done", "!!!")
    action.apply(result)
    action.close(run_id(store))
    assert result.status == "failed" and result.forget_answer
    assert result.error == "the model's answer gives nothing usable for a name: '!!!'"
    assert [p.name for p in folder.iterdir()] == ["IMG_1.jpg"]


def test_failed_and_finished_items_are_not_renamed(store: Store, folder: Path) -> None:
    a, b = photos(folder, "a.jpg", "b.jpg")
    action, _ = opened("rename", TEXT, store)
    action.apply(Result(a, "failed", error="no"))
    action.apply(Result(b, "skipped", "fox"))
    action.close(run_id(store))
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]


def test_then_name_is_parsed_into_the_actions_keys() -> None:
    assert recipe_of(TEXT).then.get(RenameKeys).name.source == "{answer|slug}{ext}"
    custom = recipe_of(STEPS + "[then]\nname = '{title}{ext}'\ndate = 'mtime'\n")
    assert custom.then.get(RenameKeys).name.source == "{title}{ext}"
    assert custom.date == "mtime" and recipe_of(TEXT).date == "original"
