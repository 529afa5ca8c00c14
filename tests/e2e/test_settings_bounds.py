"""Settings, recipes and templates people give pipe: what no machine can do is refused, and
every bad value is one line on stderr with exit 2, before any model call."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline import config, tomlfile
from pipeline import recipe as recipes
from pipeline.actions.rename import RenameKeys
from pipeline.errors import RecipeError
from pipeline.templates import MAX_WIDTH, TemplateError, compile_template
from tests.conftest import run_pipe
from tests.e2e.test_cli_fake import run_on_terminal
from tests.fakes.llama import FakeLlama


def refused(*args: str, expected: str, llama: FakeLlama | None = None, input: bytes = b"") -> str:
    """Run pipe; it must end with exit 2 and one line on stderr holding `expected`."""
    r = run_pipe(*args, input=input)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert expected in r.stderr, r.stderr
    if llama is not None:
        assert llama.generate_calls == 0
    return r.stderr


# -- numbers no machine can honour -----------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("-j", "9223372036854775807", "--jobs': expected a whole number from 1 to 1024"),
        ("-j", "0", "--jobs': expected a whole number from 1 to 1024"),
        ("--timeout", "inf", "--timeout': expected a number from 1 to 86400 seconds"),
        ("--timeout", "nan", "--timeout': expected a number from 1 to 86400 seconds"),
        ("--wait", "1e300", "--wait': expected a number from 0 to 86400 seconds"),
        ("--start-timeout", "-inf", "--start-timeout': expected a number from 1 to 86400"),
        ("--retries", "9223372036854775807", "--retries': expected a whole number from 0 to 100"),
    ],
)
def test_unbounded_flags_are_one_line(
    llama: FakeLlama, notes: Path, flag: str, value: str, expected: str
) -> None:
    refused(
        "run", "summarize-text", str(notes), "--backend", llama.url, flag, value,
        expected=expected, llama=llama,
    )  # fmt: skip


def test_doctor_and_runs_numbers_are_bounded() -> None:
    refused("doctor", "--timeout", "inf", expected="--timeout': expected a number from 1")
    refused("runs", "-n", "1" + "0" * 30, expected="--limit': expected a whole number from 1")
    refused(
        "undo",
        "1" + "0" * 30,
        expected="RUN_ID]': expected a whole number from 1 to 9,223,372,036,854,775,807,",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("jobs = 9223372036854775807", "jobs: expected a whole number from 1 to 1024"),
        ("timeout = inf", "timeout: expected a number from 1 to 86400 seconds, got inf"),
        ("wait = nan", "wait: expected a number from 0 to 86400 seconds, got nan"),
    ],
)
def test_config_numbers_are_bounded(
    pipe_home: Path, llama: FakeLlama, notes: Path, line: str, expected: str
) -> None:
    pipe_home.mkdir(parents=True, exist_ok=True)
    (pipe_home / "config.toml").write_text(line + "\n")
    err = refused(
        "run", "summarize-text", str(notes), "--backend", llama.url, expected=expected, llama=llama
    )
    assert str(pipe_home / "config.toml") in err


def test_template_width_is_bounded(llama: FakeLlama, notes: Path) -> None:
    refused(
        "run", "summarize-text", str(notes), "--backend", llama.url,
        "--set", "ask.prompt={text:>500000000}",
        expected=f"width or precision 500000000 in {{text:>500000000}} is over the limit"
        f" of {MAX_WIDTH}",
        llama=llama,
    )  # fmt: skip


def test_bounds_accept_what_they_say_and_nothing_else() -> None:
    assert config.JOBS.accepts(1) and config.JOBS.accepts(1024)
    for bad in (0, 1025, 2**63 - 1, True, 4.0, "4", None):
        assert not config.JOBS.accepts(bad), bad
    assert config.TIMEOUT.accepts(1) and config.TIMEOUT.accepts(86_400.0)
    for bad in (math.inf, -math.inf, math.nan, 0.5, 86_401, False):
        assert not config.TIMEOUT.accepts(bad), bad
    assert config.WAIT.accepts(0) and not config.WAIT.accepts(-1)


@pytest.mark.parametrize(
    "source",
    ["{a:>1001}", "{a:.5000}", "{a:01001d}", "{d:%1001Y}", "{d:%-_5000d}", "{a:" + "x" * 101 + "}"],
)
def test_template_width_and_spec_length_are_bounded(source: str) -> None:
    with pytest.raises(TemplateError, match="over"):
        compile_template(source, {"a", "d"})


def test_template_widths_together_are_bounded() -> None:
    compile_template("{a:>1000}" * 10, {"a"})
    with pytest.raises(TemplateError, match="add up to 11000, over 10000"):
        compile_template("{a:>1000}" * 11, {"a"})


def test_template_bounds_keep_ordinary_specs() -> None:
    t = compile_template("{a:>1000}|{n:08.3f}|{c:,}|{d:%Y-%m-%d}", {"a", "n", "c", "d"})
    from datetime import date

    out = t.render({"a": "x", "n": 1.5, "c": 12345, "d": date(2024, 5, 6)})
    assert out == " " * 999 + "x|0001.500|12,345|2024-05-06"


def test_a_spec_that_cannot_apply_is_a_template_error_when_rendered() -> None:
    t = compile_template("{a:,}", {"a"})
    with pytest.raises(TemplateError, match=r"format spec of \{a:,\}"):
        t.render({"a": "text"})


# -- TOML that tomllib cannot take ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'jobs = 4\nmodel_name = "\xff\xfe"\n', "not UTF-8 text (byte 24)"),
        (b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested more than 32 deep"),
        (b"x = " + b"[" * 40 + b"]" * 40 + b"\n", "nested more than 32 deep"),
        (b"x = 1\n" + b"#" * (2 << 20), "over 1 MB"),
    ],
    ids=["utf8", "deep", "deeper-than-32", "huge"],
)
def test_bad_config_toml_is_one_line(
    pipe_home: Path, notes: Path, content: bytes, expected: str
) -> None:
    pipe_home.mkdir(parents=True, exist_ok=True)
    (pipe_home / "config.toml").write_bytes(content)
    err = refused("run", "summarize-text", str(notes), expected=expected)
    assert f"{pipe_home / 'config.toml'}: " in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[ask]\nprompt = "\xc3("\n', "not UTF-8 text"),
        (b"[ask]\nprompt = 'x'\nstop = " + b"[" * 100_000 + b"]" * 100_000, "nested more than"),
        (b"[ask]\nprompt = 'x'\nstop = " + b"{a=" * 100_000 + b"}" * 100_000, "nested more than"),
    ],
    ids=["utf8", "deep-list", "deep-table"],
)
def test_bad_recipe_toml_is_one_line(
    tmp_path: Path, notes: Path, content: bytes, expected: str
) -> None:
    recipe = tmp_path / "mine.toml"
    recipe.write_bytes(content)
    err = refused("run", str(recipe), str(notes), expected=expected)
    assert f"{recipe}: " in err


def test_deep_set_value_is_one_line(notes: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000  # an argument is at most 128 KB
    refused(
        "run", "summarize-text", str(notes), "--set", f"ask.stop={deep}",
        expected="--set ask.stop=[[[",
    )  # fmt: skip


def test_tomlfile_reads_what_tomllib_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('a = [[1, 2], {b = "c"}]\n[t]\nx = 1\n')
    assert tomlfile.read(path) == {"a": [[1, 2], {"b": "c"}], "t": {"x": 1}}
    with pytest.raises(FileNotFoundError):
        tomlfile.read(tmp_path / "missing.toml")


# -- recipe values, checked at load ------------------------------------------------------


def test_a_set_error_names_the_set_not_the_builtin_recipe(llama: FakeLlama, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    err = refused(
        "run", "rename-images", str(photos), "--backend", llama.url,
        "--set", "then.name={answer:,}{ext}",
        expected="--set then.name={answer:,}{ext}: then.name: format spec of {answer:,}",
        llama=llama,
    )  # fmt: skip
    assert "rename-images.toml" not in err


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("ask.temperature=5", "ask.temperature: expected 0.0 to 2.0, got 5"),
        ("ask.temperature=nan", "ask.temperature: expected 0.0 to 2.0, got nan"),
        ("ask.max_tokens=9223372036854775807", "ask.max_tokens: expected 1 to 1000000"),
        ("ask.repeat_penalty=inf", "ask.repeat_penalty: expected 0.5 to 2.0 (1.0 is off)"),
        ("ask.prompt={text:%Y}", "ask.prompt: format spec of {text:%Y}: Invalid format spec"),
    ],
)
def test_sampling_values_are_range_checked(
    llama: FakeLlama, notes: Path, assignment: str, expected: str
) -> None:
    err = refused(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--set", assignment,
        expected=f"--set {assignment}: {expected}", llama=llama,
    )  # fmt: skip
    assert "summarize-text.toml" not in err


def test_a_recipe_files_own_error_still_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[ask]\nprompt = '{text}'\ntemperature = 3\n")
    with pytest.raises(RecipeError, match=rf"^{path}: ask.temperature: expected 0.0 to 2.0"):
        recipes.load(str(path), ["ask.max_tokens=10"])


def test_set_labels_follow_step_names(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        "[[steps]]\nname = 'gist'\nprompt = '{text}'\n"
        "[[steps]]\nname = 'title'\nprompt = '{gist}'\n"
    )
    with pytest.raises(RecipeError, match=r"^--set title.max_tokens=0: steps\[1\].max_tokens"):
        recipes.load(str(path), ["title.max_tokens=0"])


def test_format_specs_are_checked_against_each_fields_kind() -> None:
    name = "{exif.date:%Y-%m-%d}-{counter:03d}-{exif.lat:.3f}{ext}"
    ok = recipes.load("rename-images", [f"then.name={name}"])
    assert ok.then.get(RenameKeys).name.source == name
    with pytest.raises(RecipeError, match=r"format spec of \{counter:%Y\}"):
        recipes.load("rename-images", ["then.name={counter:%Y}{ext}"])


def test_write_xmp_is_refused_for_a_text_recipe(llama: FakeLlama, notes: Path) -> None:
    refused(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--write", "xmp",
        expected="--write xmp: 'xmp' describes photos, but this recipe reads no image",
        llama=llama,
    )  # fmt: skip
    refused(
        "run", "thumbnails", str(notes), "--backend", llama.url, "--write", "sidecar",
        expected="--write sidecar: 'sidecar' needs text, but the last step draws",
        llama=llama,
    )  # fmt: skip


# -- what people read --------------------------------------------------------------------


def test_help_names_backends_pool_write_exit_codes_and_folders(pipe_home: Path) -> None:
    shown = " ".join(run_pipe("run", "--help").stdout.split())
    for words in (
        "openai:URL",
        "cli:FILE.llamafile",
        "Repeat it for a pool",
        "stdout (the same as print)",
        "130 interrupted",
        "2 a usage, recipe or settings error",
    ):
        assert words in shown, words
    lines = run_pipe("run", "--help").stdout.splitlines()
    assert f"    {pipe_home / 'recipes'}" in lines and f"    {pipe_home / 'config.toml'}" in lines
    assert "Exit codes" in run_pipe("--help").stdout


def test_recipe_names_and_descriptions_reach_a_terminal_escaped(
    pipe_home: Path, llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    (pipe_home / "recipes").mkdir(parents=True)
    (pipe_home / "recipes" / "shout.toml").write_text(
        'description = "Shout \\u001b]0;owned\\u0007 it"\n[ask]\nprompt = "SHOUT: {text}"\n'
    )
    hostile = tmp_path / "b\x1b[31mred.toml"
    hostile.write_text("[ask]\nprompt = 'Sum up {text}'\n")
    assert run_pipe("run", str(hostile), str(notes), "--backend", llama.url).returncode == 0
    for command in ("recipes", "runs"):
        code, shown = run_on_terminal(command)
        assert code == 0, shown
        assert b"\x1b" not in shown and b"\x07" not in shown, shown
    assert b"Shout \\e]0;owned\\x07 it" in run_on_terminal("recipes")[1]
    assert b"b\\e[31mred" in run_on_terminal("runs")[1]


def test_a_long_set_is_cut_in_its_error() -> None:
    with pytest.raises(RecipeError) as e:
        recipes.load("summarize-text", ["ask.prompt={text:,}" + "x" * 100_000])
    assert str(e.value).startswith("--set ask.prompt={text:,}xxx") and len(str(e.value)) < 300


@pytest.mark.parametrize("key", ["²", "9" * 5000, "nope"])
def test_a_set_naming_no_step_is_one_short_line(key: str) -> None:
    with pytest.raises(RecipeError, match="no such step") as e:
        recipes.load("thumbnails", [f"steps.{key}.prompt=x"])
    assert len(str(e.value)) < 200
