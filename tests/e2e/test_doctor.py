"""`pipe doctor [RECIPE]` and the config file, through the real CLI against fake servers.

The default ports are pointed at a port where nothing listens (PIPE_DEFAULT_BACKENDS), so no
test depends on what runs on this machine's 8080, 5001, 11434 or 1234."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.doctor.checks import start_hint
from tests.conftest import run_pipe
from tests.fakes.llama import FakeLlama, dead_url
from tests.fakes.openai import FakeOpenAI
from tests.fakes.sd import FakeSd

DEAD = dead_url()


@pytest.fixture(autouse=True)
def no_default_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", DEAD)
    monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", DEAD)
    monkeypatch.delenv("PIPE_SD_BACKEND", raising=False)
    # The embedded model "not installed" (its file is missing): tests/e2e/test_quiet_lazy.py
    # checks doctor with it.
    monkeypatch.setenv("PIPE_EMBEDDED_MODEL", "/nonexistent/embedded.gguf")


@pytest.fixture
def vision_llama() -> Iterator[FakeLlama]:
    with FakeLlama(vision=True) as server:
        yield server


@pytest.fixture
def blind_llama() -> Iterator[FakeLlama]:
    with FakeLlama(vision=False) as server:
        yield server


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_pipe("doctor", *args, env=env)


def doctor_json(*args: str) -> tuple[int, list[dict[str, object]]]:
    r = doctor("--json", *args)
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()]


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


# -- one line per backend -----------------------------------------------------------------


def test_a_good_llama_cpp_server_is_one_line_with_what_it_can_do(vision_llama: FakeLlama) -> None:
    r = doctor("--backend", vision_llama.url)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if vision_llama.url in x)
    assert line.split()[0] == "ok"
    for word in ("llama.cpp", vision_llama.model, "vision yes", "images no", "grammar yes", "ms"):
        assert word in line, line
    assert "Traceback" not in r.stderr
    assert "OK:" in r.stdout


def test_json_gives_one_object_per_backend(vision_llama: FakeLlama) -> None:
    code, objects = doctor_json("--backend", vision_llama.url, "--backend", DEAD)
    assert code == 0
    assert [o["url"] for o in objects] == [vision_llama.url, DEAD]
    good, dead = objects
    assert good["reachable"] and good["kind"] == "llama.cpp" and good["vision"] is True
    assert good["slots"] == vision_llama.slots and isinstance(good["latency_ms"], float)
    assert good["grammar"] is True and good["txt2img"] is False
    assert dead["reachable"] is False and dead["error"].startswith("nothing answers")


def test_servers_are_checked_at_the_same_time_and_listed_in_the_order_given() -> None:
    servers = [FakeLlama(latency=0.3).start() for _ in range(3)]
    try:
        code, objects = doctor_json(*(a for s in servers for a in ("--backend", s.url)))
    finally:
        for server in servers:
            server.stop()
    assert code == 0
    assert [o["url"] for o in objects] == [s.url for s in servers]
    first_ends = [min(end for _, end in s.spans) for s in servers]
    first_starts = [min(start for start, _ in s.spans) for s in servers]
    assert max(first_starts) < min(first_ends)  # every tiny request was under way at once


def test_a_blind_server_says_no_vision_and_how_to_fix_it(blind_llama: FakeLlama) -> None:
    r = doctor("--backend", blind_llama.url)
    assert r.returncode == 0  # it answers: without a recipe, that is enough
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("ok"))
    assert "vision no" in line
    assert "no vision: start llama-server with --mmproj" in r.stdout


def test_a_dead_url_says_what_to_start_and_exits_3() -> None:
    r = doctor("--backend", DEAD)
    assert r.returncode == 3
    assert f"FAIL  {DEAD}  nothing answers at {DEAD.removeprefix('http://')}" in r.stdout
    assert "is the server running?" in r.stdout
    assert "Traceback" not in r.stderr


def test_each_default_port_has_its_own_start_hint() -> None:
    assert "./model.llamafile --server --nobrowser" in start_hint("http://127.0.0.1:8080")
    assert "koboldcpp --model" in start_hint("http://127.0.0.1:5001")
    assert "ollama serve" in start_hint("127.0.0.1:11434")
    assert "LM Studio" in start_hint("openai:http://127.0.0.1:1234/v1")


def test_a_server_with_several_models_needs_model_name() -> None:
    with FakeOpenAI(models=["llava", "mistral"]) as server:
        r = doctor("--backend", f"openai:{server.url}/v1")
        assert r.returncode == 3
        assert "several models" in r.stdout and "--model-name" in r.stdout
        r = doctor("--backend", f"openai:{server.url}/v1", "--model-name", "mistral")
        assert r.returncode == 0, r.stdout
        line = next(x for x in r.stdout.splitlines() if x.strip().startswith("ok"))
        assert "openai" in line and "mistral" in line


def test_unanswered_default_ports_are_one_line_when_another_backend_works(
    vision_llama: FakeLlama, tmp_path: Path
) -> None:
    other = dead_url()
    r = doctor(env={"PIPE_DEFAULT_BACKENDS": f"{vision_llama.url},{other}"})
    assert r.returncode == 0, r.stdout
    assert "FAIL" not in r.stdout
    assert f"(nothing on the default ports {other.removeprefix('http://')})" in r.stdout


# -- with a recipe ------------------------------------------------------------------------


def test_rename_images_needs_a_server_that_really_sees(
    vision_llama: FakeLlama, blind_llama: FakeLlama
) -> None:
    r = doctor("rename-images", "--backend", vision_llama.url)
    assert r.returncode == 0, r.stdout
    assert "OK: rename-images can run" in r.stdout
    r = doctor("rename-images", "--backend", blind_llama.url)
    assert r.returncode == 3
    assert "NOT OK: rename-images cannot run" in r.stdout
    assert "--mmproj" in r.stdout
    # One of several is enough, and --json says which.
    code, objects = doctor_json(
        "rename-images", "--backend", blind_llama.url, "--backend", vision_llama.url
    )
    assert code == 0
    assert [o["can_run"] for o in objects] == [False, True]


def test_a_llamafile_that_ignores_images_is_found_out_for_real() -> None:
    # llamafile's server says nothing about vision in /props; only a real image request tells.
    with FakeLlama(llamafile="0.8.1", vision=False) as server:
        code, objects = doctor_json("rename-images", "--backend", server.url)
    assert code == 3
    assert objects[0]["vision"] is False


def test_thumbnails_needs_an_image_server(blind_llama: FakeLlama) -> None:
    r = doctor("thumbnails", "--backend", blind_llama.url)
    assert r.returncode == 3
    assert "no image server" in r.stdout and "--sd-backend" in r.stdout
    with FakeSd() as sd:
        r = doctor("thumbnails", "--backend", blind_llama.url, "--sd-backend", sd.url)
        assert r.returncode == 0, r.stdout
        assert "OK: thumbnails can run" in r.stdout
        # Found on a default image port too.
        r = doctor(
            "thumbnails", "--backend", blind_llama.url, env={"PIPE_DEFAULT_IMAGE_BACKENDS": sd.url}
        )
        assert r.returncode == 0, r.stdout
    with FakeSd(model=None) as sd:  # koboldcpp without --sdmodel
        r = doctor("thumbnails", "--backend", blind_llama.url, "--sd-backend", sd.url)
        assert r.returncode == 3


def test_summarize_text_with_no_server_exits_3() -> None:
    r = doctor("summarize-text")
    assert r.returncode == 3
    assert "NOT OK: summarize-text cannot run" in r.stdout


# -- the config file ----------------------------------------------------------------------


def test_doctor_uses_the_config_files_backends_and_says_where_settings_came_from(
    vision_llama: FakeLlama, pipe_home: Path
) -> None:
    path = write_config(
        pipe_home, f'backends = ["{vision_llama.url}"]\njobs = 8\nmodel_name = "x"\n'
    )
    r = doctor("--timeout", "30")
    assert r.returncode == 0, r.stdout
    assert vision_llama.url in r.stdout
    settings = r.stdout.split("Settings")[1]
    row = {line.split()[0]: line for line in settings.splitlines() if line.strip()}
    assert row["backends"].endswith(f"config {path}")
    assert row["jobs"].split()[1] == "8" and row["jobs"].endswith(f"config {path}")
    assert row["timeout"].endswith("flag --timeout")
    assert row["wait"].endswith("default")
    assert f"config file  {path}" in settings
    r = doctor(env={"PIPE_BACKEND": vision_llama.url})
    row = {line.split()[0]: line for line in r.stdout.split("Settings")[1].splitlines() if line}
    assert row["backends"].endswith("env PIPE_BACKEND")
