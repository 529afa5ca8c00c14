"""`pipe bench` measured against the truth (issue #17).

bench-truth  pipe bench against fakes of known latency (llama.cpp 0.1 ms a prompt token and
             20 ms a generated token, koboldcpp 0.2 and 30 ms, a picture server 0.25 s):
             target every figure within 10% of what the fake was set to
bench-kobold pipe bench against the real koboldcpp (SmolLM2 + the random SD 1.5, 64x64, one
             step): completes, and its biotics figures agree within 10% with koboldcpp's
             own /api/extra/perf for the same request
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from tests.fakes.llama import FakeKobold, FakeLlama, dead_url
from tests.fakes.sd import FakeSd

Report = Callable[[str, dict[str, Any], bool, str], None]
ROOT = Path(__file__).resolve().parent.parent


def pipe_bench(tmp: Path, *args: str, timeout: float = 900) -> list[Figures]:
    env = {
        **os.environ,
        "PIPE_DEFAULT_BACKENDS": dead_url(),
        "PIPE_DEFAULT_IMAGE_BACKENDS": dead_url(),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--db", str(tmp / "bench.db"), "--json", *args],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"pipe bench exit {proc.returncode}: {proc.stderr.strip()}")
    return [Figures.from_json(d) for d in json.loads(proc.stdout)]


def _off(figure: float | None, truth: float) -> float:
    """How far a figure is from the truth, as a share of it (inf when missing)."""
    return float("inf") if figure is None else abs(figure - truth) / truth


def _biotics_errors(f: Figures, prompt_token: float, token: float) -> dict[str, float]:
    assert f.prompt_tokens and f.generated_tokens
    prompt = f.prompt_tokens * prompt_token
    return {
        "prompt/s": _off(f.prompt_per_second, 1 / prompt_token),
        "gen/s": _off(f.generated_per_second, 1 / token),
        "first token": _off(f.first_token_seconds, prompt + token),
        "seconds": _off(f.seconds, prompt + f.generated_tokens * token),
    }


def bench_truth(tmp: Path, report: Report) -> None:
    llama_pace, kobold_pace, picture = (0.0001, 0.02), (0.0002, 0.03), 0.25
    with (
        FakeLlama(prompt_token_seconds=llama_pace[0], token_seconds=llama_pace[1]) as llama,
        FakeKobold(prompt_token_seconds=kobold_pace[0], token_seconds=kobold_pace[1]) as kobold,
        FakeSd(delay=picture) as sd,
    ):
        figures = pipe_bench(
            tmp, "--backend", llama.url, "--backend", kobold.url, "--sd-backend", sd.url,
            "--size", "64", "--steps", "1",
        )  # fmt: skip
    by = {(f.backend, f.test): f for f in figures}
    errors = {"picture seconds": _off(by[sd.url, SD_YOU].seconds, picture)}
    for name, url, pace in (("llama", llama.url, llama_pace), ("kobold", kobold.url, kobold_pace)):
        for figure, off in _biotics_errors(by[url, BIOTICS], *pace).items():
            errors[f"{name} {figure}"] = off
    worst = max(errors.values())
    shown = {k: f"{v:.1%}" for k, v in errors.items()}
    report(
        "bench-truth", {"worst": f"{worst:.1%}", **shown}, worst <= 0.10, "every figure <= 10% off"
    )


def bench_kobold(tmp: Path, report: Report) -> None:
    from tests import real_servers

    started = time.perf_counter()
    with real_servers.koboldcpp_sd(tmp, text=True, ctx=2048) as kobold:
        figures = pipe_bench(
            tmp, "--backend", kobold.url, "--size", "64", "--steps", "1", "--repeat", "1"
        )
        perf = httpx.get(kobold.url + "/api/extra/perf", timeout=10).json()
    wall = time.perf_counter() - started
    by = {f.test: f for f in figures}
    f = by[BIOTICS]
    errors = {
        "prompt/s": _off(f.prompt_per_second, 1000 / perf["last_process"]),
        "gen/s": _off(f.generated_per_second, 1000 / perf["last_eval"]),
        "generated tokens": _off(f.generated_tokens, perf["last_token_count"]),
    }
    shown = {
        "wall s (server start included)": round(wall, 1),
        "prompt tokens": f.prompt_tokens,
        "biotics s": round(f.seconds, 2),
        "first token s": f.first_token_seconds and round(f.first_token_seconds, 2),
        "prompt/s": f.prompt_per_second and round(f.prompt_per_second),
        "perf prompt/s": round(1000 / perf["last_process"]),
        "gen/s": f.generated_per_second and round(f.generated_per_second, 1),
        "perf gen/s": round(1000 / perf["last_eval"], 1),
        "/sd you s": SD_YOU in by and round(by[SD_YOU].seconds, 2),
    }
    ok = SD_YOU in by and max(errors.values()) <= 0.10
    report("bench-kobold", shown, ok, "completes; biotics within 10% of /api/extra/perf")
