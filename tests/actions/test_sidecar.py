"""The sidecar action: each text answer in a file beside its input, named by `then.sidecar`;
never over a file pipe did not write."""

from __future__ import annotations

from pathlib import Path

from pipeline.actions.sidecar import SidecarKeys
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import DRAW, TEXT, opened, recipe_of


def note(folder: Path, name: str = "a.txt") -> str:
    (folder / name).write_text("A note.\n")
    return str(folder / name)


def test_it_writes_the_answer_beside_its_input(store: Store, folder: Path) -> None:
    path = note(folder)
    action, out = opened("sidecar", TEXT, store)
    result = Result(path, "done", "A summary.\n\n")
    action.apply(result)
    assert (folder / "a.txt.answer.txt").read_text() == "A summary.\n"
    assert result.status == "done" and out.getvalue() == ""


def test_then_sidecar_names_the_file(store: Store, folder: Path) -> None:
    path = note(folder)
    action, _ = opened("sidecar", TEXT + "[then]\nsidecar = '{dir}/{stem}.{recipe}.md'\n", store)
    action.apply(Result(path, "done", "A summary."))
    assert (folder / "a.r.md").read_text() == "A summary.\n"


def test_a_dry_run_says_where_and_writes_nothing(store: Store, folder: Path) -> None:
    path = note(folder)
    action, out = opened("sidecar", TEXT, store, dry_run=True)
    action.apply(Result(path, "done", "A summary."))
    assert out.getvalue() == f"{path} -> {path}.answer.txt\n"
    assert [p.name for p in folder.iterdir()] == ["a.txt"]


def test_it_replaces_its_own_file_but_not_one_it_did_not_write(store: Store, folder: Path) -> None:
    path = note(folder)
    action, _ = opened("sidecar", TEXT, store)
    action.apply(Result(path, "done", "First."))
    action.apply(Result(path, "done", "Second."))
    assert (folder / "a.txt.answer.txt").read_text() == "Second.\n"

    other = note(folder, "b.txt")
    (folder / "b.txt.answer.txt").write_text("the user's own notes\n")
    result = Result(other, "done", "A summary.")
    action.apply(result)
    assert (folder / "b.txt.answer.txt").read_text() == "the user's own notes\n"
    assert result.status == "failed"
    assert (
        result.error
        == f"sidecar: {other}.answer.txt exists and was not written by pipe; not replacing it"
    )


def test_a_file_changed_since_pipe_wrote_it_is_kept(store: Store, folder: Path) -> None:
    path = note(folder)
    action, _ = opened("sidecar", TEXT, store)
    action.apply(Result(path, "done", "First."))
    (folder / "a.txt.answer.txt").write_text("edited by hand\n")
    result = Result(path, "done", "Second.")
    action.apply(result)
    assert (folder / "a.txt.answer.txt").read_text() == "edited by hand\n"
    assert (
        result.error
        == f"sidecar: {path}.answer.txt was changed since pipe wrote it; not replacing it"
    )


def test_a_name_that_leaves_the_folder_fails_the_item(store: Store, folder: Path) -> None:
    path = note(folder)
    action, _ = opened("sidecar", TEXT + "[then]\nsidecar = '{dir}/../{name}.txt'\n", store)
    result = Result(path, "done", "A summary.")
    action.apply(result)
    assert result.status == "failed"
    assert result.error == f"sidecar: sidecar name '{folder}/../a.txt.txt' is not beside {path}"
    same, _ = opened("sidecar", TEXT + "[then]\nsidecar = '{path}'\n", store)
    result = Result(path, "done", "A summary.")
    same.apply(result)
    assert result.error == "sidecar: sidecar name is the input file itself"


def test_stdin_has_no_folder_so_the_answer_is_printed(store: Store) -> None:
    action, out = opened("sidecar", TEXT, store)
    action.apply(Result("-", "done", "A summary.", is_file=False))
    assert out.getvalue() == "A summary.\n"


def test_then_sidecar_is_parsed_into_the_actions_keys() -> None:
    assert recipe_of(TEXT).then.get(SidecarKeys).sidecar.source == "{path}.answer.txt"
    custom = recipe_of(TEXT + "[then]\nsidecar = '{stem}.txt'\n")
    assert custom.then.get(SidecarKeys).sidecar.source == "{stem}.txt"
    # read even when another action is chosen: `--write sidecar` may use it
    drawn = recipe_of(DRAW + "[then]\naction = 'image'\nsidecar = '{stem}.txt'\n")
    assert drawn.then.get(SidecarKeys).sidecar.source == "{stem}.txt"
