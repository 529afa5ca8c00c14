"""Undo of a run that both renamed and replaced files: one sequence, newest first by when
each was applied, since the journals' paths are absolute and a file rewritten under one
name is found under that name only."""

from __future__ import annotations

from pathlib import Path

from pipeline.actions import replacing, restoring
from pipeline.actions.replacing import FileState, replace_journaled
from pipeline.renaming import moves
from pipeline.store.database import Store

OLD, NEW = b"the photo as the camera wrote it", b"the photo with pipe's caption in it"


def run_of(store: Store) -> int:
    return store.start_run("r", "built-in", [], "u", "m")


def rewrite(store: Store, run_id: int, path: Path) -> None:
    replace_journaled(store, run_id, str(path), NEW, expected=FileState.of(str(path)), kind="x")


def test_renamed_then_rewritten_is_restored_then_renamed_back(store: Store, folder: Path) -> None:
    old, new = folder / "IMG_0001.jpg", folder / "harbour.jpg"
    old.write_bytes(OLD)
    run_id = run_of(store)
    moves.apply(store, run_id, [moves.Move(str(old), str(new))])
    rewrite(store, run_id, new)
    outcomes = restoring.undo_run(store, run_id)
    assert [o.state for o in outcomes] == ["undone", "undone"]
    assert isinstance(outcomes[0], restoring.Restored)  # the replacement first
    assert old.read_bytes() == OLD and not new.exists()


def test_rewritten_then_renamed_is_renamed_back_then_restored(store: Store, folder: Path) -> None:
    old, new = folder / "IMG_0001.jpg", folder / "harbour.jpg"
    old.write_bytes(OLD)
    run_id = run_of(store)
    rewrite(store, run_id, old)
    moves.apply(store, run_id, [moves.Move(str(old), str(new))])
    outcomes = restoring.undo_run(store, run_id)
    assert [o.state for o in outcomes] == ["undone", "undone"]
    assert isinstance(outcomes[0], moves.Outcome)  # the rename first
    assert old.read_bytes() == OLD and not new.exists()


def test_the_replace_hook_runs_between_every_step(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    seen: list[bytes] = []
    replacing.between_steps = lambda: seen.append(target.read_bytes())
    try:
        rewrite(store, run_of(store), target)
    finally:
        replacing.between_steps = None
    assert seen == [OLD, OLD, NEW, NEW]  # journaled, written, replaced, synced


def test_no_replace_hook_is_installed_outside_tests() -> None:
    assert replacing.between_steps is None
