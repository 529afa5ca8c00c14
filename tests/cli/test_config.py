"""`pipe run` (and `pipe runs`) with the config file, through the real CLI against fake
servers: the file fills what no flag gives, flags win, and a broken file is one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_pipe
from tests.fakes.llama import FakeLlama, dead_url

DEAD = dead_url()


@pytest.fixture(autouse=True)
def no_default_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test meets this machine's own servers or the embedded model."""
    monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", DEAD)
    monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", DEAD)
    monkeypatch.delenv("PIPE_SD_BACKEND", raising=False)
    monkeypatch.setenv("PIPE_EMBEDDED_MODEL", "/nonexistent/embedded.gguf")
    yield


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def test_run_uses_the_config_files_backend_jobs_and_recipe_defaults(
    llama: FakeLlama, notes: Path, pipe_home: Path
) -> None:
    write_config(
        pipe_home,
        f'backends = ["{llama.url}"]\njobs = 1\n\n[recipes.summarize-text]\n"ask.max_tokens" = 7\n',
    )
    r = run_pipe("run", "summarize-text", str(notes))
    assert r.returncode == 0, r.stderr
    assert llama.generate_calls == 3
    assert llama.max_active == 1  # jobs = 1, though the server has 2 slots
    bodies = [body for path, body in llama.requests if path == "/completion"]
    assert bodies and all(b["n_predict"] == 7 for b in bodies)


def test_flags_override_the_config_file(llama: FakeLlama, notes: Path, pipe_home: Path) -> None:
    write_config(
        pipe_home,
        f'backends = ["{DEAD}"]\njobs = 1\n[recipes.summarize-text]\n"ask.max_tokens" = 7\n',
    )
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--set", "ask.max_tokens=9"
    )
    assert r.returncode == 0, r.stderr
    bodies = [body for path, body in llama.requests if path == "/completion"]
    assert bodies and all(b["n_predict"] == 9 for b in bodies)
    # And the config's dead backend is what a run without the flag would use: exit 3.
    r = run_pipe("run", "summarize-text", str(notes), "--redo")
    assert r.returncode == 3


def test_config_db_is_used_by_run_and_runs(
    llama: FakeLlama, notes: Path, pipe_home: Path, tmp_path: Path
) -> None:
    db = tmp_path / "elsewhere" / "state.db"
    db.parent.mkdir()
    write_config(pipe_home, f'db = "{db}"\nbackends = ["{llama.url}"]\n')
    assert run_pipe("run", "summarize-text", str(notes)).returncode == 0
    assert db.exists()
    r = run_pipe("runs")
    assert r.returncode == 0 and "summarize-text" in r.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ('jobs = "many"\n', "jobs: expected a whole number"),
        ('backends = "http://x:8080"\n', "backends: expected a list of URLs"),
        ("jobs = \n", "not valid TOML"),
        ("[recipes.summarize-text]\nx = {a = 1}\n", "recipes.summarize-text.x"),
    ],
)
def test_a_broken_config_file_is_one_error_line_exit_2(
    pipe_home: Path, notes: Path, text: str, message: str
) -> None:
    path = write_config(pipe_home, text)
    for args in (("doctor",), ("run", "summarize-text", str(notes))):
        r = run_pipe(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert str(path) in lines[0] and message in lines[0]


@pytest.mark.parametrize("command", [("doctor",), ("run", "summarize-text")])
def test_an_api_key_variable_that_is_not_set_is_one_line_exit_2(
    command: tuple[str, ...], notes: Path, pipe_home: Path
) -> None:
    """Named by a flag or by the config file, for run and doctor alike: the key the user
    meant to send is missing, so nothing is asked without it."""
    args = (*command, *((str(notes),) if command[0] == "run" else ()))
    flag = run_pipe(*args, "--backend", DEAD, "--api-key-env", "NO_SUCH_KEY_VAR")
    write_config(pipe_home, f'backends = ["{DEAD}"]\napi_key_env = "NO_SUCH_KEY_VAR"\n')
    configured = run_pipe(*args)
    for r in (flag, configured):
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.strip().splitlines() == [
            "pipe: error: --api-key-env NO_SUCH_KEY_VAR: the environment variable"
            " NO_SUCH_KEY_VAR is not set"
        ]
