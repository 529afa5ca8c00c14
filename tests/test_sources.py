"""pipeline.sources: walking folders, filters, odd names and paths from stdin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.sources import Entry, Filters, expand, stdin_paths, walk


def names(entries: list[Entry]) -> list[str]:
    return [os.path.basename(e.path) for e in entries]


def test_walk_sorted_filtered_hidden_and_loops(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "c.jpg").write_text("c")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("h")
    (tmp_path / "b" / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone")
    found = list(walk(str(tmp_path), Filters(patterns=("*.txt",))))
    assert names(found) == ["a.txt", "z.txt"]
    with_hidden = list(walk(str(tmp_path), Filters(patterns=("*.txt",), hidden=True)))
    assert names(with_hidden) == ["h.txt", "a.txt", "z.txt"]
    excluded = list(walk(str(tmp_path), Filters(patterns=("*",), exclude=("b/*", "*.jpg"))))
    assert names(excluded) == ["a.txt"]


def test_unreadable_folder_is_an_entry_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads mode-000 folders anyway, so the refusal is simulated where it happens.
    (tmp_path / "locked").mkdir()
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.txt").write_text("a")
    real_scandir = os.scandir

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = list(walk(str(tmp_path), Filters()))
    assert found[0].error == "cannot read folder: Permission denied"
    assert names(found[1:]) == ["a.txt"]


def test_non_utf8_names_and_globs(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.txt"
    with open(raw, "wb") as f:
        f.write(b"x")
    found = list(expand([str(tmp_path / "*.txt")], Filters()))
    assert len(found) == 1 and found[0].error is None
    assert "\\xe9" in found[0].key  # printable, and unique
    assert list(expand([str(tmp_path / "*.nothing")], Filters()))[0].error


def test_stdin_paths_newlines_and_nul() -> None:
    import io

    assert list(stdin_paths(io.StringIO("a\nb c\n\n"))) == ["a", "b c"]
    assert list(stdin_paths(io.StringIO("a\nb\0c\0"), null_separated=True)) == ["a\nb", "c"]
