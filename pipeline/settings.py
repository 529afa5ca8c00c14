"""What a command runs with: each setting's value and where it came from (a flag, an
environment variable, the config file, or pipe's default), the recipe's `--set` values after
the config file's, and the secrets settings name. The one place these are resolved; no click
here: a front end says what it was given and from where.

    s = settings.resolve({"jobs": settings.Given(4, "flag")})
    s["jobs"], s.source("jobs"), s.api_key()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline import config
from pipeline.errors import UsageError
from pipeline.paths import default_db_path

if TYPE_CHECKING:  # the recipe parser loads the step kinds: only commands that need it
    from pipeline.recipe import Recipe


@dataclass(frozen=True)
class Given:
    """A value a front end was given for a config key, and how (None: its own default)."""

    value: Any
    by: Literal["flag", "env"] | None = None


@dataclass(frozen=True)
class Setting:
    name: str  # the config file's key
    value: Any
    source: str  # "flag --jobs", "env PIPE_BACKEND", "config /path/config.toml", "default"


@dataclass(frozen=True)
class Settings:
    """One command's settings, in config.KEYS's order, and the config file they read."""

    file: config.FileConfig
    by_key: dict[str, Setting] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.by_key[key].value

    def source(self, key: str) -> str:
        return self.by_key[key].source

    def api_key(self) -> str | None:
        """The key the `api_key_env` setting names (see `api_key`)."""
        return api_key(self["api_key_env"])

    def recipe_sets(self, recipe: str, sets: tuple[str, ...] | list[str] = ()) -> list[str]:
        """The `--set` assignments for `recipe`: the config file's `[recipes.NAME]`, then
        the user's own (so theirs win)."""
        return [*self.file.recipe_overrides(recipe), *sets]

    def load_recipe(self, recipe: str, sets: tuple[str, ...] | list[str] = ()) -> Recipe:
        """The recipe with the config file's and the user's `--set`s, and the persona it
        names (`persona = ...`, `--persona`) as the voice of its text steps. A bad card is a
        UsageError here, before any server is asked."""
        from pipeline import recipe as recipes

        loaded = recipes.load(recipe, self.recipe_sets(recipe, sets))
        if not loaded.persona:
            if self.by_key["user_persona"].source.startswith("flag"):
                raise UsageError("--user-persona fills {{user}} in a card: give --persona too")
            return loaded
        from pipeline import personas

        folder = self["sillytavern"]
        persona = personas.load(
            loaded.persona, self["user_persona"], Path(folder).expanduser() if folder else None
        )
        return loaded.with_persona(persona)


def resolve(
    given: Mapping[str, Given],
    default_note: Mapping[str, str] | None = None,
    file: config.FileConfig | None = None,
) -> Settings:
    """Each config key's effective value and its source: what a flag or environment variable
    gave wins, then the config file, then the command's own default (`default_note` says
    what that default means, for people). A key not `given` is the command's default, None.
    The config file is read (and checked: a UsageError) unless `file` is given."""
    file = file if file is not None else config.load()
    notes = default_note or {}
    by_key: dict[str, Setting] = {}
    for key in config.KEYS:
        g = given.get(key.name, Given(None))
        if g.by == "flag":
            by_key[key.name] = Setting(key.name, g.value, f"flag {key.flag}")
        elif g.by == "env":
            by_key[key.name] = Setting(key.name, g.value, f"env {key.envvar}")
        elif key.name in file.values:
            by_key[key.name] = Setting(key.name, file.values[key.name], f"config {file.path}")
        else:
            by_key[key.name] = Setting(key.name, g.value, notes.get(key.name, "default"))
    return Settings(file, by_key)


def api_key(name: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The API key in environment variable `name` (None when no variable is named). A named
    variable that is unset or blank is a UsageError (exit 2) before any server is asked:
    a run or a check without the key the user meant to send would only fail later, as a 401.
    The key itself never goes into a message."""
    if not name:
        return None
    key = environ.get(name, "").strip()
    if not key:
        raise UsageError(f"--api-key-env {name}: the environment variable {name} is not set")
    return key


def database(db: str | None) -> str:
    """The state database a command reads: `--db` (or PIPE_DB), else the config file's `db`,
    else the default in the user data folder."""
    return db or config.load().values.get("db") or str(default_db_path())
