"""The wheel: every package of pipeline/ is listed in pyproject.toml."""

from __future__ import annotations

from pathlib import Path


def test_every_package_ships_in_the_wheel() -> None:
    """A package missing from pyproject's list installs fine in editable mode and breaks
    every real install."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(root).parts) for p in (root / "pipeline").rglob("__init__.py")
    }
    assert found <= listed
