"""Where a setting comes from, the recipe's `--set` values, and the API key: resolved in
`pipeline.settings`, without click."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import config, settings
from pipeline.errors import UsageError
from pipeline.settings import Given
from tests.conftest import ROOT


def file_config(tmp_path: Path, text: str) -> config.FileConfig:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_a_flag_or_variable_wins_then_the_file_then_the_default(tmp_path: Path) -> None:
    file = file_config(tmp_path, 'jobs = 8\ntimeout = 30\nbackends = ["http://gpu1:8080"]\n')
    s = settings.resolve(
        {
            "jobs": Given(2, "flag"),
            "backends": Given(("http://env:1",), "env"),
            "timeout": Given(600.0),  # the option's own default: the file's wins
            "wait": Given(30.0),
        },
        file=file,
    )
    assert (s["jobs"], s.source("jobs")) == (2, "flag --jobs")
    assert (s["backends"], s.source("backends")) == (("http://env:1",), "env PIPE_BACKEND")
    assert (s["timeout"], s.source("timeout")) == (30, f"config {file.path}")
    assert (s["wait"], s.source("wait")) == (30.0, "default")
    # A key the command has no option for is its default, None, or the file's.
    assert s["model_name"] is None and s.source("model_name") == "default"
    assert list(s.by_key) == [key.name for key in config.KEYS]  # doctor lists them so


def test_default_notes_say_what_a_default_means(tmp_path: Path) -> None:
    file = config.FileConfig(tmp_path / "none.toml")
    s = settings.resolve({}, {"jobs": "default: each server's slots"}, file=file)
    assert s.source("jobs") == "default: each server's slots"
    assert s.source("db") == "default"


def test_resolve_reads_the_config_file_in_the_config_folder(pipe_home: Path) -> None:
    pipe_home.mkdir(parents=True)
    (pipe_home / "config.toml").write_text('model_name = "llava"\n')
    s = settings.resolve({})
    assert s["model_name"] == "llava" and s.file.exists
    (pipe_home / "config.toml").write_text("colour = 1\n")
    with pytest.raises(UsageError, match="unknown key 'colour'"):
        settings.resolve({})


def test_the_config_files_recipe_defaults_go_before_the_users_sets(tmp_path: Path) -> None:
    file = file_config(tmp_path, '[recipes.summarize-text]\n"ask.max_tokens" = 7\n')
    s = settings.resolve({}, file=file)
    assert s.recipe_sets("summarize-text", ("ask.max_tokens=9",)) == [
        "ask.max_tokens=7",
        "ask.max_tokens=9",
    ]
    assert s.recipe_sets("./summarize-text.toml") == ["ask.max_tokens=7"]  # by path too
    assert s.recipe_sets("draw", ("x=1",)) == ["x=1"]
    recipe = s.load_recipe("summarize-text", ("ask.max_tokens=9",))
    assert recipe.steps[0].max_tokens == 9


def test_the_api_key_is_read_from_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.api_key(None) is None and settings.api_key("") is None
    assert settings.api_key("KEY_VAR", {"KEY_VAR": " sk-1 \n"}) == "sk-1"
    monkeypatch.setenv("PIPE_TEST_KEY", "sk-from-env")
    s = settings.resolve(
        {"api_key_env": Given("PIPE_TEST_KEY", "flag")}, file=config.FileConfig(Path("x"))
    )
    assert s.api_key() == "sk-from-env"


@pytest.mark.parametrize("environ", [{}, {"KEY_VAR": ""}, {"KEY_VAR": "  "}])
def test_a_named_variable_that_is_unset_is_a_usage_error_that_shows_no_key(
    environ: dict[str, str],
) -> None:
    with pytest.raises(UsageError) as raised:
        settings.api_key("KEY_VAR", environ)
    assert str(raised.value) == (
        "--api-key-env KEY_VAR: the environment variable KEY_VAR is not set"
    )
    assert raised.value.exit_code == 2


def test_the_database_is_the_flag_then_the_config_files_then_the_default(
    pipe_home: Path,
) -> None:
    assert settings.database("/tmp/given.db") == "/tmp/given.db"
    assert settings.database(None) == str(pipe_home / "pipe.db")
    pipe_home.mkdir(parents=True)
    (pipe_home / "config.toml").write_text('db = "~/state.db"\n')
    assert settings.database(None) == str(Path("~/state.db").expanduser())


def test_settings_and_config_load_without_click() -> None:
    code = "import sys, pipeline.settings; print('click' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "False", r.stderr
