from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.support import where_to_run


@pytest.fixture
def where(tmp_path: Path) -> Path:
    return where_to_run(tmp_path)
