"""`pipe bench` against the real servers: llama.cpp's, and koboldcpp drawing with a
random-weight SD 1.5 beside SmolLM2 (one server for text and pictures, the seed's setup),
at 64x64 and one step so the portrait takes seconds."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from tests import real_servers
from tests.bench.support import QUICK, pipe_bench

pytestmark = pytest.mark.real


def test_koboldcpp_with_a_text_and_an_image_model_gives_both_figures(
    tmp_path: Path, where: Path
) -> None:
    with real_servers.koboldcpp_sd(tmp_path, text=True, ctx=2048) as kobold:
        r = pipe_bench(where, "--backend", kobold.url, *QUICK, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    figures = {f.test: f for f in (Figures.from_json(d) for d in json.loads(r.stdout))}
    assert set(figures) == {BIOTICS, SD_YOU}
    assert figures[BIOTICS].kind == "koboldcpp" and figures[BIOTICS].context_size == 2048
    assert figures[SD_YOU].seconds > 0 and figures[SD_YOU].width == 64
    assert figures[BIOTICS].seconds > 0 and figures[BIOTICS].runs == 3


def test_koboldcpp_biotics_agrees_with_its_own_perf_for_the_same_request(
    tmp_path: Path, where: Path
) -> None:
    """The issue's target: pipe's biotics figures against koboldcpp's `/api/extra/perf`,
    read after the one counted request (a picture does not change the text figures)."""
    with real_servers.koboldcpp_sd(tmp_path, text=True, ctx=2048) as kobold:
        r = pipe_bench(
            where, "--backend", kobold.url, *QUICK, "--repeat", "1", "--json", timeout=600
        )
        perf = httpx.get(kobold.url + "/api/extra/perf", timeout=10).json()
    assert r.returncode == 0, r.stderr
    [f] = [Figures.from_json(d) for d in json.loads(r.stdout) if d["test"] == BIOTICS]
    assert f.generated_tokens == perf["last_token_count"]
    assert f.prompt_per_second and f.generated_per_second and f.prompt_tokens
    assert abs(f.prompt_per_second - 1000 / perf["last_process"]) <= 0.1 * f.prompt_per_second
    assert abs(f.generated_per_second - 1000 / perf["last_eval"]) <= 0.1 * f.generated_per_second
    # The librarian and the paragraph in ChatML: the seed's ~1,125 tokens.
    assert 1000 <= f.prompt_tokens <= 1250
    assert f.first_token_seconds is not None and f.first_token_seconds <= f.seconds


def test_llama_cpp_reports_its_prompt_and_its_own_timings(tmp_path: Path, where: Path) -> None:
    with real_servers.llama_server(tmp_path, ctx=2048) as llama:
        r = pipe_bench(where, "--backend", llama.url, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    [f] = [Figures.from_json(d) for d in json.loads(r.stdout)]
    assert f.prompt_tokens and f.prompt_tokens > 200  # the paragraph and the persona
    assert f.prompt_per_second and f.generated_per_second and f.generated_tokens
    # pipe's own part of each request: a few ms on loopback, never most of it.
    assert f.overhead_ms is not None and 0 <= f.overhead_ms < 0.5 * f.seconds * 1000


def test_with_no_server_anywhere_the_embedded_model_is_benched(where: Path) -> None:
    real_servers.need_embedded_model()
    r = pipe_bench(where, "--repeat", "1", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    [f] = [Figures.from_json(d) for d in json.loads(r.stdout)]
    assert (f.backend, f.kind, f.test) == ("embedded", "embedded model", BIOTICS)
    assert f.prompt_tokens and f.prompt_per_second and f.overhead_ms is not None


def test_a_model_pipe_starts_shows_the_gpu_layers_it_was_started_with(where: Path) -> None:
    binary = real_servers.llama_server_binary()
    model = real_servers.smollm2_model()
    r = pipe_bench(
        where,
        *("--model", str(model), "--server-binary", str(binary), "--gpu-layers", "0"),
        *("--repeat", "1", "--json"),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    [f] = [Figures.from_json(d) for d in json.loads(r.stdout)]
    assert f.gpu_layers == 0 and f.backend == f"model:{model}" and f.context_size
    table = pipe_bench(where, "--history")
    assert table.returncode == 0 and "SmolLM2" in table.stdout
