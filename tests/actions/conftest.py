from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store.database import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the inputs are (the store is beside it, not in it)."""
    made = tmp_path / "files"
    made.mkdir()
    return made
