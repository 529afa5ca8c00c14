"""What starting pipe costs before it does anything (issue #16).

  startup   `pipe --help` and `pipe recipes` against a bare `python -c pass`, 10 runs each,
            alternated so a busy machine slows all three alike
            target `pipe --help` median <= bare median + 150 ms

Bytecode is cached in a folder of the bench's own (PYTHONPYCACHEPREFIX), warmed by one run
first: with PYTHONDONTWRITEBYTECODE set every start would compile pipe again, which an
installed pipe never does. Wall time is the target; CPU time (user + system, of the child)
is shown beside it, as it moves less on a loaded machine.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Report = Callable[[str, dict[str, Any], bool, str], None]
RUNS = 10
BUDGET_MS = 150

COMMANDS = {
    "bare": ["-c", "pass"],
    "--help": ["-m", "pipeline", "--help"],
    "recipes": ["-m", "pipeline", "recipes"],
}


def _timed(args: list[str], env: dict[str, str], root: Path) -> tuple[float, float]:
    """Wall and CPU milliseconds of one `python ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def bench_startup(tmp: Path, root: Path, report: Report) -> None:
    env = {**os.environ, "PIPE_HOME": str(tmp / "home-startup")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache-startup")
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for args in COMMANDS.values():
        _timed(args, env, root)  # compile once, as an installed pipe has
    for _ in range(RUNS):
        for name, args in COMMANDS.items():
            wall, cpu = _timed(args, env, root)
            walls[name].append(wall)
            cpus[name].append(cpu)
    wall = {name: statistics.median(times) for name, times in walls.items()}
    cpu = {name: statistics.median(times) for name, times in cpus.items()}
    figures: dict[str, Any] = {}
    for name in COMMANDS:
        extra = "" if name == "bare" else f" (+{wall[name] - wall['bare']:.0f})"
        figures[f"{name} ms"] = f"{wall[name]:.0f}{extra}, cpu {cpu[name]:.0f}"
    report(
        "startup",
        figures,
        wall["--help"] - wall["bare"] <= BUDGET_MS,
        f"--help <= bare + {BUDGET_MS} ms",
    )
