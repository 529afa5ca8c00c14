"""What a cron job and a new user see: nothing when nothing is new, no server started or
asked before an item needs it, a missing path is a usage error, and `pipe doctor` agrees
with `pipe run` about the embedded model.

The default ports point where nothing listens, and the embedded model is a file that is not
a model (PIPE_EMBEDDED_MODEL): pipe knows its name from the file, and any attempt to start it
fails loudly (exit 3), so a run that succeeds provably started nothing."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, pipe_cmd, run_pipe
from tests.fakes.llama import FakeLlama, dead_url

MODEL = "tiny-embedded.gguf"


@pytest.fixture(autouse=True)
def no_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No default server answers; the embedded model is "installed" but cannot start."""
    model = tmp_path / "models" / MODEL
    model.parent.mkdir()
    model.write_bytes(b"not a model: starting it fails")
    monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", dead_url())
    monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", dead_url())
    monkeypatch.setenv("PIPE_EMBEDDED_MODEL", str(model))
    monkeypatch.delenv("PIPE_SD_BACKEND", raising=False)
    return model


@pytest.fixture
def same_model() -> FakeLlama:
    """A server with the embedded model's name: its answers are the embedded model's."""
    with FakeLlama(model=MODEL) as server:
        yield server


def cron(*args: str) -> subprocess.CompletedProcess[bytes]:
    """As cron runs it: stdin from /dev/null, stdout and stderr to a pipe (no terminal)."""
    return subprocess.run(
        pipe_cmd(*args), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
    )


def model_calls(server: FakeLlama) -> list[str]:
    """Requests that use the model (detection and /props do not)."""
    return [path for path, _ in server.requests if path in ("/tokenize", "/completion")]


def test_cron_rerun_of_a_finished_folder_prints_nothing_and_starts_nothing(
    same_model: FakeLlama, notes: Path
) -> None:
    first = cron(
        "run", "summarize-text", str(notes), "--write", "sidecar", "--backend", same_model.url
    )
    assert first.returncode == 0, first.stderr
    assert b"3 done" in first.stderr  # something was done: the summary says so
    # The embedded default: finished files are skipped by their cache key, which holds the
    # model's name, read from its file. Starting it would fail (exit 3).
    again = cron("run", "summarize-text", str(notes), "--write", "sidecar")
    assert again.returncode == 0, again.stderr
    assert again.stdout == b"" and again.stderr == b""
    # -v says what happened, still without starting anything.
    verbose = cron("run", "summarize-text", str(notes), "--write", "sidecar", "-v")
    assert verbose.returncode == 0 and b"3 skipped" in verbose.stderr
    # A new file needs an answer: now the model is started (and here, fails to).
    (notes / "note4.md").write_text("A new note.\n")
    new = cron("run", "summarize-text", str(notes), "--write", "sidecar")
    assert new.returncode == 3
    assert b"embedded model server did not start" in new.stderr
    assert b"Traceback" not in new.stderr


def test_a_configured_server_is_not_asked_for_a_finished_folder(
    same_model: FakeLlama, notes: Path
) -> None:
    args = ("run", "summarize-text", str(notes), "--backend", same_model.url, "--write", "sidecar")
    assert cron(*args).returncode == 0
    asked = len(model_calls(same_model))
    again = cron(*args)
    assert again.returncode == 0 and again.stdout == again.stderr == b""
    assert len(model_calls(same_model)) == asked  # no tokenize, no completion


def test_a_dry_run_whose_answers_are_cached_starts_nothing(
    same_model: FakeLlama, notes: Path
) -> None:
    preview = run_pipe(
        "run", "summarize-text", str(notes), "--dry-run", "--json", "--backend", same_model.url
    )
    assert preview.returncode == 0, preview.stderr
    asked = len(model_calls(same_model))
    # The same dry run with the embedded default, then the real run: all from the cache.
    again = run_pipe("run", "summarize-text", str(notes), "--dry-run", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count('"answer"') == 3
    real = run_pipe("run", "summarize-text", str(notes), "--json")
    assert real.returncode == 0, real.stderr
    assert real.stdout.count('"cached"') == 3
    assert len(model_calls(same_model)) == asked


def test_a_missing_path_is_a_usage_error_before_anything_starts(
    same_model: FakeLlama, notes: Path
) -> None:
    started = time.monotonic()
    r = run_pipe("run", "summarize-text", "/nonexistent", "--backend", same_model.url)
    assert r.returncode == 2, r.stderr
    assert "no such file or folder: /nonexistent" in r.stderr
    assert time.monotonic() - started < 30
    r = run_pipe("run", "summarize-text", str(notes), str(notes / "*.none"))
    assert r.returncode == 2 and "no file matches" in r.stderr
    assert same_model.requests == []  # not even a look at the server


def test_a_vision_recipe_with_no_vision_server_says_so(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), (10, 90, 200)).save(tmp_path / "p.jpg")
    r = run_pipe("run", "describe-images", str(tmp_path / "p.jpg"))
    assert r.returncode == 3, r.stderr
    assert "describe-images needs a model that sees images" in r.stderr
    assert "--mmproj" in r.stderr
    assert "embedded model server" not in r.stderr and "127.0.0.1:" not in r.stderr.split(";")[1]


def test_thumbnails_dry_run_needs_only_the_text_server(llama: FakeLlama, notes: Path) -> None:
    r = run_pipe("run", "thumbnails", str(notes), "--dry-run", "--backend", llama.url, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('"answer"') == 3


def test_doctor_lists_the_embedded_model_when_nothing_answers(no_servers: Path) -> None:
    r = run_pipe("doctor", "summarize-text")
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(x for x in r.stdout.splitlines() if "embedded model" in x)
    assert MODEL in row and row.strip().startswith("ok")
    assert "OK: summarize-text can run" in r.stdout
    r = run_pipe("doctor", "describe-images")
    assert r.returncode == 3
    assert "NOT OK: describe-images cannot run" in r.stdout
    r = run_pipe("doctor", "summarize-text", env={"PIPE_EMBEDDED_MODEL": str(no_servers) + ".gone"})
    assert r.returncode == 3 and "embedded:" not in r.stdout
