"""How an action declares its `then` keys and what it needs; `actions/then.py` reads a
recipe's `[then]` table from these declarations.

An action's keys are a frozen dataclass (its `then_keys`), one field per key, each made
with `template_key`, `choice_key` or `text_key`; the dataclass's defaults are the keys'
defaults, and the parsed values reach the action as `recipe.then.get(ItsKeys)`. Its
`needs` say what the recipe must answer for it to make sense (checked at load and for
`--write`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.errors import RecipeError
from pipeline.templates import Template, compile_template

# Fields of a name built from the input file (a sidecar's, a picture's).
NAME_FIELDS = frozenset({"path", "name", "stem", "ext", "dir", "recipe"})
META = "then"  # the dataclass field metadata key that holds a field's `ThenKey`


@dataclass(frozen=True)
class Needs:
    """What an action takes: what the last step answers (steps.TEXT or steps.PICTURE; ""
    for either), and whether the inputs must be photos (some step reads an image)."""

    answer: str = ""
    photos: bool = False


@dataclass(frozen=True)
class Reading:
    """What reading a key may use: where the recipe is (for errors), its steps' answers."""

    where: str
    answers: frozenset[str]

    def refuse(self, label: str, message: str) -> RecipeError:
        return RecipeError(f"{self.where}: {label}: {message}")


class ThenKey(Protocol):
    """One key's kind: checks the TOML value's type and turns it into the setting."""

    def read(self, value: Any, reading: Reading, label: str) -> Any: ...


def _string(value: Any, reading: Reading, label: str) -> str:
    if not isinstance(value, str):  # as steps.table.typed says it
        raise reading.refuse(label, f"expected a string, got {value!r}")
    return value


@dataclass(frozen=True)
class TemplateKey:
    """A string compiled as a template over `fields` (and the steps' answers if `answers`)."""

    fields: frozenset[str]
    answers: bool = False

    def read(self, value: Any, reading: Reading, label: str) -> Template:
        allowed = set(self.fields) | (set(reading.answers) if self.answers else set())
        # Format specs are checked against sample values of each field, as for prompts.
        # Imported here: `pipe --help` imports the actions (for `--write`), not the steps.
        from pipeline.steps.table import template

        return template(_string(value, reading, label), allowed, reading.where, label)


@dataclass(frozen=True)
class ChoiceKey:
    """A string that must be one of `choices`."""

    choices: tuple[str, ...]

    def read(self, value: Any, reading: Reading, label: str) -> str:
        if _string(value, reading, label) not in self.choices:
            expected = ", ".join(self.choices)
            raise reading.refuse(label, f"expected one of {expected}, got {value!r}")
        return value


@dataclass(frozen=True)
class TextKey:
    """A plain string, held to `check` (which returns what is wrong, or "")."""

    check: Callable[[str], str]

    def read(self, value: Any, reading: Reading, label: str) -> str:
        problem = self.check(_string(value, reading, label))
        if problem:
            raise reading.refuse(label, f"{problem}, got {value!r}")
        return value


def template_key(default: str, fields: Iterable[str], *, answers: bool = False) -> Any:
    """A key whose value is a template (`then.sidecar = "{stem}.txt"`)."""
    key = TemplateKey(frozenset(fields), answers)
    return field(default_factory=lambda: compile_template(default), metadata={META: key})


def choice_key(default: str, choices: tuple[str, ...]) -> Any:
    """A key whose value is one of a few words (`then.date = "mtime"`)."""
    return field(default=default, metadata={META: ChoiceKey(choices)})


def text_key(default: str, check: Callable[[str], str]) -> Any:
    """A key whose value is a plain string (`then.hierarchy = "pipe"`)."""
    return field(default=default, metadata={META: TextKey(check)})


def key_names(keys: type | None) -> list[str]:
    """The `then` keys a keys dataclass declares, in order."""
    return [f.name for f in dataclasses.fields(keys)] if keys else []


def read_keys(keys: type[Any], table: dict[str, Any], reading: Reading, prefix: str) -> Any:
    """An instance of `keys` from the table's values (the defaults for missing keys)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(keys):
        if f.name not in table:
            continue
        values[f.name] = f.metadata[META].read(table[f.name], reading, prefix + f.name)
    return keys(**values)
