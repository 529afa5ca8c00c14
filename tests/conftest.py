from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.llama import FakeKobold, FakeLlama
from tests.fakes.sd import FakeSd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"  # what tests read, in the repository: see its README.md
CORPUS = DATA / "photos"  # real photos with real EXIF, by folder (cameras/, gps/, ...)


@pytest.fixture(autouse=True)
def pipe_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user folder and database; no real user state is touched."""
    home = tmp_path / "pipe-home"
    monkeypatch.setenv("PIPE_HOME", str(home))
    for var in (
        "PIPE_BACKEND",
        "PIPE_DB",
        "PIPE_CONFIG_DIR",
        "PIPE_DATA_DIR",
        "PIPE_USER_PERSONA",
        "PIPE_SILLYTAVERN",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def llama() -> Iterator[FakeLlama]:
    with FakeLlama(slots=2) as server:
        yield server


@pytest.fixture
def kobold() -> Iterator[FakeKobold]:
    with FakeKobold() as server:
        yield server


@pytest.fixture
def sd() -> Iterator[FakeSd]:
    with FakeSd() as server:
        yield server


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"note{i}.md").write_text(f"Note number {i}. The harbour was busy today.\n")
    return folder


def pipe_cmd(*args: str) -> list[str]:
    """The command line that runs the real CLI with this interpreter."""
    return [sys.executable, "-m", "pipeline", *args]


def run_pipe(
    *args: str, input: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user or a cron job would run it."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        pipe_cmd(*args),
        input=input if input is not None else b"",
        capture_output=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, what: str) -> None:
    """Poll until process `pid` has exited; if it has not (the failure under test), kill it
    so that no orphan outlives the test either."""
    try:
        wait_for(lambda: not alive(pid), timeout=30, what=f"{what} {pid} to exit with pipe")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_for(fact: Callable[[], object], timeout: float = 60, what: str = "") -> None:
    """Poll until `fact()` is true: tests wait on observable state, never on a fixed time."""
    deadline = time.monotonic() + timeout
    while not fact():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or fact}")
        time.sleep(0.005)
