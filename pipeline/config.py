"""The user's config file (`config.toml` in the config folder), the settings it shares with
flags (KEYS), and the bounds of pipe's numbers. Where a command's setting came from is
`pipeline.settings`'s business.

```toml
backends = ["http://gpu1:8080", "openai:http://vllm.lan:8000/v1"]
sd_backend = "http://127.0.0.1:5001"
jobs = 8
db = "~/pipe/state.db"
api_key_env = "VLLM_KEY"
model_name = "llava"
user_persona = "me"             # {{user}} in character cards (a SillyTavern persona)
sillytavern = "~/SillyTavern"   # where --persona NAME also looks for cards
timeout = 600
wait = 30
xmp_sidecar = "photo.xmp"       # sidecars as Lightroom names them (default "photo.jpg.xmp")
[recipes.summarize-text]        # default --set values per recipe
"ask.max_tokens" = 200
persona = "librarian"           # the voice of this recipe's text steps
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

from pipeline import paths
from pipeline.errors import UsageError

FILE_NAME = "config.toml"


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_url_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_str(u) for u in v)


@dataclass(frozen=True)
class Bound:
    """The numbers a setting may take. One per setting, used by its flag (the CLI makes it a
    click type) and by config.toml, so `-j 9223372036854775807` (every thread built up front) or
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


def _num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else f"{value:g}"


DAY = 86_400.0
JOBS = Bound(1, 1024, whole=True)  # requests in flight; each is a thread
TIMEOUT = Bound(1, DAY, unit="seconds")  # for one answer, or for a server to load
WAIT = Bound(0, DAY, unit="seconds")
RETRIES = Bound(0, 100, whole=True)
RUNS_LIMIT = Bound(1, 1_000_000, whole=True)
# How XMP sidecars are named: darktable's and digiKam's way (the default), or Lightroom's
# and Capture One's (one sidecar for the photos of one stem, IMG_1.jpg and IMG_1.CR2).
XMP_SIDECARS = ("photo.jpg.xmp", "photo.xmp")
RUN_ID = Bound(1, 2**63 - 1, whole=True)  # SQLite's largest integer


@dataclass(frozen=True)
class Key:
    """A setting that config.toml and a flag (and maybe an environment variable) both give.
    KEYS is the one list of them: the file's checks, the CLI's shared options and where each
    value came from are all read from it."""

    name: str  # config.toml's key
    flags: tuple[str, ...]  # the command line's, the long one last
    param: str  # the command's parameter
    check: Callable[[Any], bool]
    expected: str  # what the check wants, for people
    envvar: str = ""
    bound: Bound | None = None
    multiple: bool = False

    @property
    def flag(self) -> str:
        return self.flags[-1]


KEYS: tuple[Key, ...] = (
    Key(
        "backends",
        ("--backend",),
        "backend_urls",
        _is_url_list,
        'a list of URLs, e.g. ["http://gpu1:8080"]',
        envvar="PIPE_BACKEND",
        multiple=True,
    ),
    Key(
        "sd_backend",
        ("--sd-backend",),
        "sd_url",
        _is_str,
        'a URL, e.g. "http://127.0.0.1:5001"',
        envvar="PIPE_SD_BACKEND",
    ),
    Key("jobs", ("-j", "--jobs"), "jobs", JOBS.accepts, JOBS.describe(), bound=JOBS),
    Key("db", ("--db",), "db", _is_str, 'a file path, e.g. "~/pipe/state.db"', envvar="PIPE_DB"),
    Key(
        "api_key_env",
        ("--api-key-env",),
        "api_key_env",
        _is_str,
        'the name of an environment variable, e.g. "VLLM_KEY"',
    ),
    Key("model_name", ("--model-name",), "model_name", _is_str, 'a model name, e.g. "llava"'),
    Key("timeout", ("--timeout",), "timeout", TIMEOUT.accepts, TIMEOUT.describe(), bound=TIMEOUT),
    Key("wait", ("--wait",), "wait", WAIT.accepts, WAIT.describe(), bound=WAIT),
    Key(
        "user_persona",
        ("--user-persona",),
        "user_persona",
        _is_str,
        'a SillyTavern persona\'s name or a text file, e.g. "me"',
        envvar="PIPE_USER_PERSONA",
    ),
    Key(
        "sillytavern",
        ("--sillytavern",),
        "sillytavern",
        _is_str,
        'SillyTavern\'s folder, e.g. "~/SillyTavern"',
        envvar="PIPE_SILLYTAVERN",
    ),
    Key(
        "xmp_sidecar",
        ("--xmp-sidecar",),
        "xmp_sidecar",
        lambda v: v in XMP_SIDECARS,
        '"photo.jpg.xmp" (darktable, digiKam) or "photo.xmp" (Lightroom, Capture One)',
        envvar="PIPE_XMP_SIDECAR",
    ),
)
KEY: dict[str, Key] = {key.name: key for key in KEYS}


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
    from pipeline import tomlfile  # the TOML parser: not for `pipe --help`

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
        if key not in KEY:
            known = ", ".join([*KEY, "recipes"])
            raise UsageError(f"{path}: unknown key {key!r}; known keys: {known}")
        if not KEY[key].check(value):
            raise UsageError(f"{path}: {key}: expected {KEY[key].expected}, got {value!r}")
        values[key] = value
    for name in ("db", "sillytavern"):
        if name in values:
            values[name] = os.path.expanduser(values[name])
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


def _env_list(var: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(var)
    if value is None:
        return fallback
    return tuple(u for u in value.replace(",", " ").split() if u)


def default_backends() -> tuple[str, ...]:
    """The ports pipe tries when no backend is given. `PIPE_DEFAULT_BACKENDS` (URLs separated
    by spaces or commas) replaces them: tests use it so they never meet this machine's own
    servers."""
    from pipeline.backends import default_urls  # the backend kinds: not for `pipe --help`

    return _env_list("PIPE_DEFAULT_BACKENDS", default_urls("text"))


def default_image_backends() -> tuple[str, ...]:
    """Where an image server is looked for; `PIPE_DEFAULT_IMAGE_BACKENDS` replaces them."""
    from pipeline.backends import default_urls

    return _env_list("PIPE_DEFAULT_IMAGE_BACKENDS", default_urls("pictures"))
