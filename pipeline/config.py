"""The user's config file (`config.toml` in the config folder) and where each setting of a
command came from: a flag, an environment variable, the config file, or pipe's default.

```toml
backends = ["http://gpu1:8080", "openai:http://vllm.lan:8000/v1"]
sd_backend = "http://127.0.0.1:5001"
jobs = 8
db = "~/pipe/state.db"
api_key_env = "VLLM_KEY"
model_name = "llava"
timeout = 600
wait = 30
[recipes.summarize-text]        # default --set values per recipe
"ask.max_tokens" = 200
```
Flags and environment variables win over the file; a recipe's defaults apply before `--set`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from pipeline import paths, tomlfile
from pipeline.backends import default_urls
from pipeline.errors import UsageError

FILE_NAME = "config.toml"


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_url_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_str(u) for u in v)


@dataclass(frozen=True)
class Bound:
    """The numbers a setting may take. One per setting, used by its flag (as the click type)
    and by config.toml, so `-j 9223372036854775807` (every thread built up front) or
    `--timeout inf` (an OverflowError per item) is refused wherever it comes from."""

    low: float
    high: float
    whole: bool = False  # a whole number, else any finite number
    unit: str = ""  # "seconds"

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} from {_num(self.low)} to {_num(self.high)}{unit}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if self.whole else int | float):
            return False
        return math.isfinite(value) and self.low <= value <= self.high

    def param(self) -> click.ParamType:
        return _BoundType(self)


def _num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else f"{value:g}"


class _BoundType(click.ParamType):
    def __init__(self, bound: Bound) -> None:
        self.bound = bound
        self.name = "integer" if bound.whole else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = (int if self.bound.whole else float)(value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not self.bound.accepts(number):
            self.fail(f"expected {self.bound.describe()}, got {value!r}", param, ctx)
        return number


DAY = 86_400.0
JOBS = Bound(1, 1024, whole=True)  # requests in flight; each is a thread
TIMEOUT = Bound(1, DAY, unit="seconds")  # for one answer, or for a server to load
WAIT = Bound(0, DAY, unit="seconds")
RETRIES = Bound(0, 100, whole=True)
RUNS_LIMIT = Bound(1, 1_000_000, whole=True)
RUN_ID = Bound(1, 2**63 - 1, whole=True)  # SQLite's largest integer


# key: (check, what it should be)
KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "backends": (_is_url_list, 'a list of URLs, e.g. ["http://gpu1:8080"]'),
    "sd_backend": (_is_str, 'a URL, e.g. "http://127.0.0.1:5001"'),
    "jobs": (JOBS.accepts, JOBS.describe()),
    "db": (_is_str, 'a file path, e.g. "~/pipe/state.db"'),
    "api_key_env": (_is_str, 'the name of an environment variable, e.g. "VLLM_KEY"'),
    "model_name": (_is_str, 'a model name, e.g. "llava"'),
    "timeout": (TIMEOUT.accepts, TIMEOUT.describe()),
    "wait": (WAIT.accepts, WAIT.describe()),
}


@dataclass(frozen=True)
class FileConfig:
    """What the config file says (empty when there is none)."""

    path: Path
    exists: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def recipe_defaults(self, recipe: str) -> dict[str, Any]:
        """`[recipes.NAME]` for a recipe given by name or by path (`./NAME.toml`)."""
        return self.recipes.get(os.path.basename(recipe).removesuffix(".toml"), {})

    def recipe_overrides(self, recipe: str) -> list[str]:
        """The recipe's defaults as `--set` assignments, to go before the user's own."""
        return [f"{k}={_toml_value(v)}" for k, v in self.recipe_defaults(recipe).items()]


def config_path() -> Path:
    return paths.config_dir() / FILE_NAME


def load(path: Path | None = None) -> FileConfig:
    """Read and check the config file; a problem is one UsageError naming the file and key."""
    path = path or config_path()
    try:
        data = tomlfile.read(path)
    except FileNotFoundError:
        return FileConfig(path)
    except tomlfile.Unreadable as e:
        raise UsageError(f"{path}: {e}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    values: dict[str, Any] = {}
    recipes: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key == "recipes":
            recipes = _check_recipes(path, value)
            continue
        if key not in KEYS:
            known = ", ".join([*KEYS, "recipes"])
            raise UsageError(f"{path}: unknown key {key!r}; known keys: {known}")
        check, expected = KEYS[key]
        if not check(value):
            raise UsageError(f"{path}: {key}: expected {expected}, got {value!r}")
        values[key] = value
    if "db" in values:
        values["db"] = os.path.expanduser(values["db"])
    return FileConfig(path, True, values, recipes)


def _check_recipes(path: Path, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: recipes: expected tables like [recipes.summarize-text]")
    for name, table in value.items():
        if not isinstance(table, dict):
            raise UsageError(
                f'{path}: recipes.{name}: expected a table of fields, e.g. "ask.max_tokens" = 200'
            )
        for key, field_value in table.items():
            if not _plain(field_value):
                raise UsageError(
                    f"{path}: recipes.{name}.{key}: expected a string, number, boolean or list"
                )
    return value


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, str | int | float | bool)


def _toml_value(value: Any) -> str:
    """A TOML literal for a string, number, boolean or list (JSON's forms are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


# -- where a command's settings come from ------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # the config file's key
    value: Any
    source: str  # "flag --jobs", "env PIPE_BACKEND", "config /path/config.toml", "default"


# config key -> (click parameter name, its flag, its environment variable or "")
PARAMS: dict[str, tuple[str, str, str]] = {
    "backends": ("backend_urls", "--backend", "PIPE_BACKEND"),
    "sd_backend": ("sd_url", "--sd-backend", "PIPE_SD_BACKEND"),
    "jobs": ("jobs", "--jobs", ""),
    "db": ("db", "--db", "PIPE_DB"),
    "api_key_env": ("api_key_env", "--api-key-env", ""),
    "model_name": ("model_name", "--model-name", ""),
    "timeout": ("timeout", "--timeout", ""),
    "wait": ("wait", "--wait", ""),
}


def resolve(
    ctx: click.Context, file: FileConfig, given: dict[str, Any], default_note: dict[str, str]
) -> dict[str, Setting]:
    """Each setting's effective value and its source. `given` holds the command's parameter
    values by config key; a flag or environment variable wins, then the config file, then the
    command's own default (`default_note` says what that default means, for people)."""
    settings: dict[str, Setting] = {}
    for key, value in given.items():
        param, flag, env = PARAMS[key]
        source = ctx.get_parameter_source(param)
        if source is ParameterSource.COMMANDLINE:
            settings[key] = Setting(key, value, f"flag {flag}")
        elif source is ParameterSource.ENVIRONMENT:
            settings[key] = Setting(key, value, f"env {env}")
        elif key in file.values:
            settings[key] = Setting(key, file.values[key], f"config {file.path}")
        else:
            settings[key] = Setting(key, value, default_note.get(key, "default"))
    return settings


def _env_list(var: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(var)
    if value is None:
        return fallback
    return tuple(u for u in value.replace(",", " ").split() if u)


def default_backends() -> tuple[str, ...]:
    """The ports pipe tries when no backend is given. `PIPE_DEFAULT_BACKENDS` (URLs separated
    by spaces or commas) replaces them: tests use it so they never meet this machine's own
    servers."""
    return _env_list("PIPE_DEFAULT_BACKENDS", default_urls("text"))


def default_image_backends() -> tuple[str, ...]:
    """Where an image server is looked for; `PIPE_DEFAULT_IMAGE_BACKENDS` replaces them."""
    return _env_list("PIPE_DEFAULT_IMAGE_BACKENDS", default_urls("pictures"))
