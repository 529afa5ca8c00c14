"""The journal of replaced files: a file people own is replaced only if it is what pipe read,
its old bytes kept once per sha256, and undo puts them back byte for byte; a planned row a
killed run left is settled from the digest on disk; prune frees the kept bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pipeline.actions import replacing, restoring
from pipeline.actions.replacing import FileState, replace_journaled
from pipeline.results import ActionError
from pipeline.store.database import Store

OLD = b"<x:xmpmeta>the user's own edits</x:xmpmeta>\n"
NEW = b"<x:xmpmeta>the user's own edits and pipe's caption</x:xmpmeta>\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(store: Store) -> int:
    return store.start_run("r", "built-in", [], "u", "m")


def rows(store: Store) -> list[tuple[str, str | None, str]]:
    return store.conn.execute("SELECT state, old_sha, new_sha FROM replaced ORDER BY id").fetchall()


def test_it_replaces_keeping_the_old_bytes_and_the_mode(store: Store, folder: Path) -> None:
    target = folder / "p.jpg.xmp"
    target.write_bytes(OLD)
    target.chmod(0o640)
    run_id = run(store)
    replace_journaled(
        store, run_id, str(target), NEW, expected=FileState.of(str(target)), kind="xmp"
    )
    assert target.read_bytes() == NEW
    assert target.stat().st_mode & 0o777 == 0o640
    assert store.replaced.backup_path(sha(OLD)).read_bytes() == OLD
    assert rows(store) == [("applied", sha(OLD), sha(NEW))]
    assert sorted(p.name for p in folder.iterdir()) == ["p.jpg.xmp"]  # no temporary left


def test_undo_restores_byte_for_byte_and_removes_what_pipe_made(store: Store, folder: Path) -> None:
    kept, made = folder / "a.xmp", folder / "b.xmp"
    kept.write_bytes(OLD)
    kept.chmod(0o664)
    run_id = run(store)
    replace_journaled(store, run_id, str(kept), NEW, expected=FileState.of(str(kept)), kind="xmp")
    replace_journaled(store, run_id, str(made), NEW, expected=None, kind="xmp")
    outcomes = restoring.undo_run(store, run_id)
    assert [(Path(o.path).name, o.state, o.did) for o in outcomes] == [
        ("b.xmp", "undone", "removed"),
        ("a.xmp", "undone", "restored"),
    ]
    assert kept.read_bytes() == OLD and not made.exists()
    assert kept.stat().st_mode & 0o777 == 0o664  # its mode, whatever the umask
    assert restoring.undo_run(store, run_id) == []  # nothing applied is left


def test_undo_keeps_a_file_changed_since_pipe_wrote_it(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    run_id = run(store)
    replace_journaled(
        store, run_id, str(target), NEW, expected=FileState.of(str(target)), kind="xmp"
    )
    target.write_bytes(b"darktable wrote again")
    [outcome] = restoring.undo_run(store, run_id)
    assert (outcome.state, outcome.reason) == ("failed", "changed since pipe wrote it; kept")
    assert target.read_bytes() == b"darktable wrote again"


def test_a_file_changed_since_it_was_read_is_not_replaced(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    read = FileState.of(str(target))
    target.write_bytes(OLD.upper())
    with pytest.raises(ActionError, match="changed since pipe read it; not replacing it"):
        replace_journaled(store, run(store), str(target), NEW, expected=read, kind="xmp")
    assert target.read_bytes() == OLD.upper()
    with pytest.raises(ActionError, match="changed since pipe read it"):  # appeared meanwhile
        replace_journaled(store, run(store), str(folder / "new.xmp"), NEW, expected=read, kind="x")
    (folder / "b.xmp").write_bytes(OLD)
    with pytest.raises(ActionError, match="changed since pipe read it"):  # one appeared
        replace_journaled(store, run(store), str(folder / "b.xmp"), NEW, expected=None, kind="x")
    assert rows(store) == [] and (folder / "b.xmp").read_bytes() == OLD


def test_same_digest_but_touched_is_refused_as_changed(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    read = FileState.of(str(target))
    assert read is not None
    os.utime(target, ns=(read.mtime_ns + 10**9, read.mtime_ns + 10**9))
    with pytest.raises(ActionError, match="changed since pipe read it"):
        replace_journaled(store, run(store), str(target), NEW, expected=read, kind="xmp")


def test_the_same_bytes_again_write_nothing(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(NEW)
    before = target.stat()
    replace_journaled(
        store, run(store), str(target), NEW, expected=FileState.of(str(target)), kind="xmp"
    )
    assert rows(store) == [] and target.stat().st_mtime_ns == before.st_mtime_ns


def test_a_finished_temporary_file_is_renamed_into_place(store: Store, folder: Path) -> None:
    target, temp = folder / "photo.jpg", folder / ".photo.tmp"
    target.write_bytes(OLD)
    temp.write_bytes(NEW)
    replace_journaled(
        store,
        run(store),
        str(target),
        str(temp),
        expected=FileState.of(str(target)),
        kind="embedded",
    )
    assert target.read_bytes() == NEW and not temp.exists()
    elsewhere = folder.parent / "elsewhere.tmp"
    elsewhere.write_bytes(NEW)
    with pytest.raises(ActionError, match="not in the folder of"):
        replace_journaled(
            store,
            run(store),
            str(target),
            str(elsewhere),
            expected=FileState.of(str(target)),
            kind="embedded",
        )
    assert elsewhere.read_bytes() == NEW  # the caller's to remove


def test_identical_files_share_one_backup(store: Store, folder: Path) -> None:
    run_id = run(store)
    for name in ("a.xmp", "b.xmp"):
        (folder / name).write_bytes(OLD)
        path = str(folder / name)
        replace_journaled(
            store, run_id, path, NEW + name.encode(), expected=FileState.of(path), kind="xmp"
        )
    assert os.listdir(store.replaced.folder) == [sha(OLD)]
    assert store.replaced.kept_bytes([run_id]) == {run_id: len(OLD)}
    restoring.undo_run(store, run_id)
    assert (folder / "a.xmp").read_bytes() == (folder / "b.xmp").read_bytes() == OLD


@pytest.mark.parametrize("kind", ["link", "folder", "fifo"])
def test_anything_but_a_regular_file_is_refused(store: Store, folder: Path, kind: str) -> None:
    target = folder / "a.xmp"
    if kind == "link":
        (folder / "real").write_bytes(OLD)
        target.symlink_to(folder / "real")
    elif kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(ActionError, match="not a regular file; not replacing it"):
        FileState.of(str(target))
    with pytest.raises(ActionError, match="not a regular file"):
        replace_journaled(store, run(store), str(target), NEW, expected=None, kind="xmp")


def planned_then_killed(store: Store, folder: Path, stop_after: int) -> tuple[Path, int]:
    """A replacement stopped after `stop_after` of its pauses, as a SIGKILL would leave it
    (the run marked dead, the row still planned)."""
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    run_id = run(store)
    calls = []

    class Killed(BaseException):
        pass

    def pause() -> None:
        calls.append(1)
        if len(calls) > stop_after:
            raise Killed

    replacing.between_steps = pause
    try:
        with pytest.raises(Killed):
            replace_journaled(
                store, run_id, str(target), NEW, expected=FileState.of(str(target)), kind="xmp"
            )
    finally:
        replacing.between_steps = None
    store.conn.execute("UPDATE runs SET status = 'killed' WHERE id = ?", (run_id,))
    store.run_table._alive.clear()
    return target, run_id


@pytest.mark.parametrize("stop_after", [0, 1, 2, 3])
def test_a_killed_replacement_is_settled_from_the_disk(
    store: Store, folder: Path, stop_after: int
) -> None:
    target, run_id = planned_then_killed(store, folder, stop_after)
    assert rows(store)[0][0] == "planned"
    replaced = target.read_bytes() == NEW
    assert target.read_bytes() in (OLD, NEW)
    [settled] = restoring.resolve(store)
    assert settled.state == ("applied" if replaced else "abandoned")
    assert sorted(p.name for p in folder.iterdir()) == ["a.xmp"]  # no half-written temporary
    restoring.undo_run(store, run_id)
    assert target.read_bytes() == OLD


def test_prune_frees_the_kept_bytes_and_undo_then_refuses(store: Store, folder: Path) -> None:
    target = folder / "a.xmp"
    target.write_bytes(OLD)
    first = run(store)
    replace_journaled(
        store, first, str(target), NEW, expected=FileState.of(str(target)), kind="xmp"
    )
    assert store.replaced.prunable_runs(keep=1) == []
    assert restoring.prune(store, store.replaced.prunable_runs(keep=0)) == len(OLD)
    assert not store.replaced.backup_path(sha(OLD)).exists()
    assert store.replaced.is_pruned(first)
    [outcome] = restoring.undo_run(store, first)
    assert outcome.state == "failed" and "pruned" in outcome.reason
    assert target.read_bytes() == NEW
