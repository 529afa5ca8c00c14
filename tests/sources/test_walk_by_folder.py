"""The walk stats each file from its open folder (os.scandir on a descriptor): the same
entries, paths and errors as by path, and no folder left open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.sources import Entry, Filters, walk


def _tree(root: Path) -> None:
    for name in ("a/b/c/x.txt", "a/y.txt", "z.txt", "a/b/w.txt", ".h/q.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (root / "a" / "b" / "loop").symlink_to(root / "a")
    (root / "a" / "dangling.txt").symlink_to(root / "nowhere")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(os.scandir not in os.supports_fd, reason="scandir takes no descriptor here")
def test_walk_by_descriptor_gives_paths_keys_and_closes(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = _open_fds()
    for root in (str(tmp_path), str(tmp_path) + os.sep):
        found = list(walk(root, Filters()))
        assert [e.path for e in found] == [
            os.path.join(str(tmp_path), *p.split("/"))
            for p in ("a/b/c/x.txt", "a/b/w.txt", "a/y.txt", "z.txt")
        ]
        assert all(e.key == e.path and e.stat is not None for e in found)
    stopped = walk(str(tmp_path), Filters())
    next(stopped)  # a walk left half-way (a run stopped) closes its folders too
    stopped.close()
    assert _open_fds() == before


@pytest.mark.skipif(os.scandir not in os.supports_fd, reason="scandir takes no descriptor here")
def test_a_folder_that_cannot_be_opened_is_an_entry_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root opens mode-000 folders anyway, so the refusal is simulated where it happens.
    _tree(tmp_path)
    real_open = os.open

    def refusing(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("b"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    found = list(walk(str(tmp_path), Filters()))
    expected = Entry(str(tmp_path / "a" / "b"), error="cannot read folder: Permission denied")
    assert found[0] == expected
    assert [Path(e.path).name for e in found[1:]] == ["y.txt", "z.txt"]
