"""What a cron job costs (issue #15): a re-run over a finished folder, and a missing path.

  cron          re-run over 10,000 finished files (sidecars), embedded default
                target 0 bytes of output, 0 servers started, <= 1.0 s
  missing-path  `pipe run summarize-text /nonexistent`   target exit 2 in <= 0.5 s

The embedded default is a file that is not a model (PIPE_EMBEDDED_MODEL): pipe knows its
name from the file, and starting it would fail (exit 3), so exit 0 proves no server was
started. The folder is finished by a fake server that reports the same model name.
With PYTHONDONTWRITEBYTECODE set, every start compiles pipe again (~0.25 s of CPU): unset
it (or set PYTHONPYCACHEPREFIX) to measure what an installed pipe costs.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.llama import FakeLlama

Report = Callable[[str, dict[str, Any], bool, str], None]
MODEL = "bench-embedded.gguf"


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _timed(args: list[str], env: dict[str, str], root: Path) -> tuple[float, float, Any]:
    """Wall and CPU (user + system) seconds of one pipe, as cron runs it (no terminal)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=root,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def bench_cron(tmp: Path, root: Path, make_tree: Callable[..., Path], report: Report) -> None:
    tree = make_tree(tmp / "cron", 10_000)
    model = tmp / MODEL
    model.write_bytes(b"not a model: starting it fails")
    env = {
        "PIPE_HOME": str(tmp / "home-cron"),
        "PIPE_DEFAULT_BACKENDS": _dead_url(),
        "PIPE_EMBEDDED_MODEL": str(model),
    }
    args = ["run", "summarize-text", str(tree), "--write", "sidecar"]
    with FakeLlama(slots=4, model=MODEL) as server:
        _, _, first = _timed([*args, "--backend", server.url, "-q"], env, root)
    if first.returncode != 0:
        sys.exit(f"the first run failed: {first.stderr.decode()[-800:]}")
    walls, cpus, output, codes = [], [], 0, set()
    for _ in range(3):
        wall, cpu, proc = _timed(args, env, root)
        walls.append(wall)
        cpus.append(cpu)
        output += len(proc.stdout) + len(proc.stderr)
        codes.add(proc.returncode)
    median = statistics.median(walls)
    started = 0 if codes == {0} else "?"
    report(
        "cron",
        {
            "re-run s median": round(median, 2),
            "cpu s median": round(statistics.median(cpus), 2),
            "output bytes": output,
            "servers started": started,
            "exit": sorted(codes),
        },
        median <= 1.0 and output == 0 and codes == {0},
        "0 bytes, 0 servers, <= 1.0 s",
    )


def bench_missing_path(tmp: Path, root: Path, report: Report) -> None:
    env = {"PIPE_HOME": str(tmp / "home-missing"), "PIPE_DEFAULT_BACKENDS": _dead_url()}
    walls, cpus, codes = [], [], set()
    for _ in range(5):
        wall, cpu, proc = _timed(["run", "summarize-text", "/nonexistent"], env, root)
        walls.append(wall)
        cpus.append(cpu)
        codes.add(proc.returncode)
    median = statistics.median(walls)
    report(
        "missing-path",
        {
            "s median": round(median, 2),
            "cpu s median": round(statistics.median(cpus), 2),
            "exit": sorted(codes),
        },
        median <= 0.5 and codes == {2},
        "exit 2 in <= 0.5 s",
    )
