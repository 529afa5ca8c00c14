"""`pipe bench` end to end: the real CLI in a subprocess, run from a folder of its own,
against fake servers of known latency (tests/fakes)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from tests.bench.support import QUICK, pipe_bench, within
from tests.cli.test_imports import image_modules, loaded_by
from tests.conftest import ROOT, alive, wait_for
from tests.fakes.llama import FakeKobold, FakeLlama, dead_url
from tests.fakes.sd import FakeSd

FAKE_LLAMAFILE = ROOT / "tests" / "fakes" / "llamafile.py"


# Known latency: the fakes spend this on each prompt token and each generated token.
PROMPT_TOKEN = {"llama": 0.0001, "kobold": 0.0002}  # 10,000 and 5,000 prompt tokens a second
TOKEN = {"llama": 0.02, "kobold": 0.03}  # 50 and 33 generated tokens a second
PICTURE = 0.25


@pytest.fixture
def servers() -> Iterator[tuple[FakeLlama, FakeKobold, FakeSd]]:
    with (
        FakeLlama(
            prompt_token_seconds=PROMPT_TOKEN["llama"], token_seconds=TOKEN["llama"]
        ) as llama,
        FakeKobold(
            prompt_token_seconds=PROMPT_TOKEN["kobold"], token_seconds=TOKEN["kobold"]
        ) as kobold,
        FakeSd(delay=PICTURE) as sd,
    ):
        yield llama, kobold, sd


def near(figure: float | None, truth: float) -> bool:
    """Within 10% of what the fake was set to."""
    return figure is not None and abs(figure - truth) <= 0.1 * truth


def check_true(f: Figures, prompt_token: float, token: float) -> None:
    """Every biotics figure against the fake's setting, for the tokens the server counted."""
    assert f.prompt_tokens and f.generated_tokens, f
    prompt = f.prompt_tokens * prompt_token
    assert near(f.prompt_per_second, 1 / prompt_token), f
    assert near(f.generated_per_second, 1 / token), f
    assert near(f.first_token_seconds, prompt + token), f
    assert near(f.seconds, prompt + f.generated_tokens * token), f
    # pipe's own part: the rest of the request, a small share of it on loopback.
    assert f.overhead_ms is not None and 0 <= f.overhead_ms <= 0.1 * f.seconds * 1000, f


def all_of(servers: tuple[FakeLlama, FakeKobold, FakeSd]) -> list[str]:
    llama, kobold, sd = servers
    return ["--backend", llama.url, "--backend", kobold.url, "--sd-backend", sd.url, *QUICK]


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_json_figures_are_true_kept_and_shown_by_history_and_nothing_is_written(
    where: Path, servers: tuple[FakeLlama, FakeKobold, FakeSd]
) -> None:
    llama, kobold, sd = servers
    r = pipe_bench(where, *all_of(servers), "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal and no -v: no progress
    figures = [Figures.from_json(d) for d in json.loads(r.stdout)]
    by = {(f.backend, f.test): f for f in figures}
    assert set(by) == {(llama.url, BIOTICS), (kobold.url, BIOTICS), (sd.url, SD_YOU)}
    check_true(by[llama.url, BIOTICS], PROMPT_TOKEN["llama"], TOKEN["llama"])
    check_true(by[kobold.url, BIOTICS], PROMPT_TOKEN["kobold"], TOKEN["kobold"])
    assert within(by[sd.url, SD_YOU].seconds, PICTURE)
    for f in figures:
        assert f.seconds > 0 and f.runs == 3 and f.at and f.model
        assert all(v is None or v > 0 for v in (f.prompt_tokens, f.prompt_per_second,
                                                f.generated_per_second, f.overhead_ms))  # fmt: skip
    # Nothing written but the database: no picture, no log, in the cwd or beside the db.
    assert files_in(where) == []
    assert {Path(p).name for p in files_in(where.parent / "state")} <= {
        "pipe.db", "pipe.db-wal", "pipe.db-shm"
    }  # fmt: skip
    history = pipe_bench(where, "--history", "--json")
    assert history.returncode == 0, history.stderr
    assert [Figures.from_json(d) for d in json.loads(history.stdout)] == figures
    mine = pipe_bench(where, "--history", "--json", "--backend", kobold.url)
    assert [Figures.from_json(d) for d in json.loads(mine.stdout)] == [by[kobold.url, BIOTICS]]


def test_the_table_has_one_row_per_backend_and_progress_only_with_v(
    where: Path, servers: tuple[FakeLlama, FakeKobold, FakeSd]
) -> None:
    llama, kobold, sd = servers
    r = pipe_bench(where, *all_of(servers), "--repeat", "1", "-v")
    assert r.returncode == 0, r.stderr
    seed_table = r.stdout.split("\n\n")[0].splitlines()[2:]  # the rows under the header
    assert len(seed_table) == 3, r.stdout
    for model in (llama.model, kobold.model, "random-sd15"):  # long names are cut mid-way
        assert sum(model[:10] in line for line in seed_table) == 1, r.stdout
    assert "biotics warm-up" in r.stderr and "(not counted)" in r.stderr
    history = pipe_bench(where, "--history")
    assert history.returncode == 0 and llama.model.removesuffix(".gguf") in history.stdout


def test_keep_writes_valid_pngs_and_never_replaces_a_file(
    where: Path, servers: tuple[FakeLlama, FakeKobold, FakeSd]
) -> None:
    _, kobold, sd = servers
    keep = where / "portraits"
    r = pipe_bench(
        where, "--backend", kobold.url, "--sd-backend", sd.url, *QUICK, "--keep", str(keep)
    )
    assert r.returncode == 0, r.stderr
    kept = sorted(keep.iterdir())
    assert [p.name for p in kept] == [
        f"wren-127.0.0.1-{sd.url.rsplit(':', 1)[1]}-{i}.png" for i in (1, 2, 3)
    ]
    for path in kept:
        with Image.open(path) as im:
            im.load()
            assert im.format == "PNG" and im.size == (64, 64)
    kept[1].write_bytes(b"mine")
    drawn = len(sd.drawn)
    again = pipe_bench(
        where, "--backend", kobold.url, "--sd-backend", sd.url, *QUICK, "--keep", str(keep)
    )
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "not replacing" in again.stderr
    assert kept[1].read_bytes() == b"mine" and len(sd.drawn) == drawn  # refused before drawing
    assert any(
        f["test"] == BIOTICS for f in json.loads(pipe_bench(where, "--history", "--json").stdout)
    )


def test_chart_is_a_png_of_the_size_asked_and_replaces_only_pipe_s_own(
    where: Path, servers: tuple[FakeLlama, FakeKobold, FakeSd]
) -> None:
    llama = servers[0]
    chart = where / "bench.png"
    for size in ((), ("--chart-size", "640x360")):  # the second replaces pipe's own chart
        args = ("--backend", llama.url, "--repeat", "1", "--chart", str(chart), *size)
        r = pipe_bench(where, *args)
        assert r.returncode == 0, r.stderr
        with Image.open(io.BytesIO(chart.read_bytes())) as im:
            im.load()
            assert im.format == "PNG" and im.size == ((640, 360) if size else (1200, 700))
    bad = pipe_bench(where, "--backend", llama.url, "--chart", str(chart), "--chart-size", "9x9")
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr
    mine = where / "mine.png"
    mine.write_bytes(b"a user's file")
    asked = llama.generate_calls
    r = pipe_bench(where, "--backend", llama.url, "--repeat", "1", "--chart", str(mine))
    assert r.returncode == 2 and "not replacing" in r.stderr
    assert mine.read_bytes() == b"a user's file"
    assert llama.generate_calls == asked  # refused before the bench, not after it


def test_a_down_backend_is_one_line_and_exit_3(where: Path) -> None:
    down = dead_url()
    r = pipe_bench(where, "--backend", down)
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and down in r.stderr, r.stderr


def test_a_backend_failing_mid_way_is_one_line_and_the_rest_run(where: Path) -> None:
    with FakeLlama(failures=["", "", "500", "500", "500"]) as failing, FakeKobold() as kobold:
        r = pipe_bench(where, "--backend", failing.url, "--backend", kobold.url, "--json")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and failing.url in r.stderr, r.stderr
    assert [f["backend"] for f in json.loads(r.stdout)] == [kobold.url]


@pytest.mark.parametrize(
    "args", [("--repeat", "0"), ("--size", "100"), ("--size", "2048"), ("--steps", "81")]
)
def test_bounds_are_usage_errors(where: Path, args: tuple[str, str]) -> None:
    r = pipe_bench(where, *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr


def test_bench_help_loads_no_image_code() -> None:
    modules = loaded_by("bench", "--help")
    assert "pipeline.cli.bench" in modules
    assert image_modules(modules) == []
    assert [m for m in modules if m.startswith(("pipeline.bench", "pipeline.store", "httpx"))] == []


def test_a_model_file_is_started_benched_as_itself_and_stopped(where: Path, tmp_path: Path) -> None:
    model = tmp_path / "models" / "fake.llamafile"
    model.parent.mkdir()
    model.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LLAMAFILE}" "$@"\n')
    model.chmod(0o755)
    temp = tmp_path / "tmp"
    temp.mkdir()
    pidfile = tmp_path / "server.pid"
    env = {
        "FAKE_LLAMAFILE_LATENCY": "0.2",
        "FAKE_LLAMAFILE_PIDFILE": str(pidfile),
        "TMPDIR": str(temp),
    }
    r = pipe_bench(where, "--model", str(model), "--json", env=env)
    assert r.returncode == 0, r.stderr
    [f] = [Figures.from_json(d) for d in json.loads(r.stdout)]
    assert f.backend == f"model:{model}" and f.model == "fake.gguf"
    assert within(f.seconds, 0.2)
    wait_for(lambda: not alive(int(pidfile.read_text())), timeout=30, what="the server to stop")
    assert list(temp.iterdir()) == [] and files_in(where) == []


def test_ctrl_c_stops_koboldcpp_s_generation_too(where: Path) -> None:
    with FakeKobold(latency=30) as kobold:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "bench", "--backend", kobold.url,
             "--db", str(where.parent / "state" / "pipe.db")],
            cwd=where, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_for(lambda: kobold.active == 1, what="the warm-up to be generating")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        assert len(kobold.aborted) == 1 and kobold.aborted[0].startswith("KCPP")
