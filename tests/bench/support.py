"""What the bench tests share: the real CLI run from a folder of its own, with a database
in another, never meeting this machine's own servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.fakes.llama import dead_url

QUICK = ("--size", "64", "--steps", "1")  # pictures the fakes (and a CPU) draw at once


def where_to_run(tmp_path: Path) -> Path:
    """The folder the CLI runs in; the database is in a folder of its own."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (tmp_path / "state").mkdir()
    return cwd


def pipe_bench(
    where: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    db = where.parent / "state" / "pipe.db"
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PIPE_DEFAULT_BACKENDS": dead_url(),  # never this machine's own servers
        "PIPE_DEFAULT_IMAGE_BACKENDS": dead_url(),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--db", str(db), *args],
        capture_output=True, text=True, env=full_env, cwd=where, timeout=timeout,
    )  # fmt: skip


def within(figure: float | None, truth: float) -> bool:
    return figure is not None and truth <= figure <= truth * 1.1
