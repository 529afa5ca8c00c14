"""pipeline.renaming.moves: the hook crash tests use to widen the protocol's windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.renaming import moves


def test_the_hook_runs_inside_the_window_between_link_and_unlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "IMG_0001.jpg", tmp_path / "harbour.jpg"
    old.write_bytes(b"photo")
    seen: list[tuple[bool, bool]] = []
    monkeypatch.setattr(moves, "between_steps", lambda: seen.append((old.exists(), new.exists())))
    moves.rename_no_clobber(str(old), str(new))
    assert seen == [(True, True)]  # both names at once: the window a kill may land in
    assert not old.exists() and new.read_bytes() == b"photo"


def test_no_hook_is_installed_outside_tests() -> None:
    assert moves.between_steps is None
