"""Benchmarks for a pool of servers (issue #10, part 4).

pool-two   two fakes of 2 slots x 200 ms, 200 files: target within 10 % of the ideal 10 s;
           then the same with one fake killed at half time: the run completes, every file
           done exactly once (figures: its time against the ideal 15 s)
pool-20    twenty fakes of 2 slots x 200 ms, 4,000 files: within 10 % of the ideal 20 s
           (40 slots kept busy at 200 files/s)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LATENCY = 0.2


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note{i:05}.md").write_text(f"Note {i}: a walk by the river, herons, rain.\n")
    return folder


def done_once(db: Path, n: int) -> tuple[int, int]:
    """(files done exactly once, files done more than once) in the last run's history."""
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("SELECT MAX(id) FROM runs").fetchone()
        counts = [
            c
            for (c,) in conn.execute(
                "SELECT COUNT(*) FROM history WHERE run_id = ? AND status = 'done' GROUP BY path",
                (run_id,),
            )
        ]
    return sum(c == 1 for c in counts), sum(c > 1 for c in counts)


def run_pool(
    tmp: Path,
    name: str,
    servers: int,
    files: int,
    pipe: Callable[..., Any],
    run_seconds: Callable[[Path], float],
    kill_at: int | None = None,
) -> dict[str, Any]:
    from tests.fakes.llama import FakeLlama

    folder = notes(tmp / name, files)
    home = tmp / f"home-{name}"
    fakes = [FakeLlama(slots=2, latency=LATENCY).start() for _ in range(servers)]
    killed: list[float] = []

    def killer() -> None:
        assert kill_at is not None
        while sum(f.generate_calls for f in fakes) < kill_at:
            time.sleep(0.01)
        fakes[0].kill()
        killed.append(time.monotonic())

    if kill_at is not None:
        threading.Thread(target=killer, daemon=True).start()
    args = [arg for f in fakes for arg in ("--backend", f.url)]
    try:
        wall, _, rss = pipe("run", "summarize-text", str(folder), *args, "-q", env={
            "PIPE_HOME": str(home)
        })  # fmt: skip
    finally:
        for f in fakes:
            f.stop()
    once, twice = done_once(home / "pipe.db", files)
    return {
        "run s": round(run_seconds(home / "pipe.db"), 2),
        "process wall s": round(wall, 2),
        "done once": once,
        "done twice": twice,
        "max in flight per server": max(f.max_active for f in fakes),
        "killed": bool(killed),
        "peak RSS MB": round(rss / 1024),
    }


def bench_two(
    tmp: Path, pipe: Callable[..., Any], run_seconds: Callable[[Path], float]
) -> tuple[dict[str, Any], bool]:
    ideal = 200 * LATENCY / 4
    plain = run_pool(tmp, "pool-two", 2, 200, pipe, run_seconds)
    # Half the files done, then one of the two dies: the rest go at half speed.
    kill = run_pool(tmp, "pool-two-kill", 2, 200, pipe, run_seconds, kill_at=100)
    figures = {
        "run s": plain["run s"],
        "ideal": ideal,
        "killed at half: run s": kill["run s"],
        "ideal with kill": ideal / 2 + 100 * LATENCY / 2,
        "done once": [plain["done once"], kill["done once"]],
        "done twice": [plain["done twice"], kill["done twice"]],
        "max in flight per server": plain["max in flight per server"],
    }
    met = (
        plain["run s"] <= ideal * 1.1
        and kill["killed"]
        and plain["done once"] == kill["done once"] == 200
        and plain["done twice"] == kill["done twice"] == 0
    )
    return figures, met


def bench_twenty(
    tmp: Path, pipe: Callable[..., Any], run_seconds: Callable[[Path], float]
) -> tuple[dict[str, Any], bool]:
    ideal = 4000 * LATENCY / 40
    result = run_pool(tmp, "pool-20", 20, 4000, pipe, run_seconds)
    figures = {"ideal": ideal, **result}
    met = result["run s"] <= ideal * 1.1 and result["done once"] == 4000
    return figures, met
