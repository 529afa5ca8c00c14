"""Reading a recipe's tables: each field's type and bounds checked, and every error one
line naming the file and the field (`recipe.toml: steps[1].max_tokens: expected ...`).
Shared by the step kinds and by the recipe's own tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.errors import RecipeError
from pipeline.templates import Template, TemplateError, compile_template

# A value like each field's at run time, to check format specs (`{answer:,}`) at load.
_SAMPLES: dict[str, Any] = {
    "counter": 1,
    "exif": {},
    "exif.date": datetime(2000, 1, 1),
    "exif.lat": 0.0,
    "exif.lon": 0.0,
}


@dataclass(frozen=True)
class Key:
    """One field of a step table: its type, its default, and for a number its bounds."""

    type: Any  # str, int, list, or (int, float) for any number
    default: Any
    bounds: tuple[float, float] | None = None
    hint: str = ""  # what an out-of-bounds error expects; "LOW to HIGH" when empty
    # Why a value read is still wrong ("" when it is fine): checked right after reading.
    check: Callable[[Any], str] | None = None
    convert: Callable[[Any], Any] | None = None  # the value as the step keeps it


class Table:
    """One table of a recipe being read; `prefix` is how errors name it (`steps[1].`)."""

    def __init__(self, raw: dict[str, Any], where: str, prefix: str) -> None:
        self.raw = raw
        self.where = where
        self.prefix = prefix

    def error(self, key: str, message: str) -> RecipeError:
        return RecipeError(f"{self.where}: {self.prefix}{key}: {message}")

    def typed(self, key: str, kind: Any, default: Any) -> Any:
        return typed(self.raw, key, kind, self.where, self.prefix, default)

    def no_unknown_keys(self, known: set[str]) -> None:
        no_unknown_keys(self.raw, known, self.where, self.prefix)

    def template(self, key: str, source: str, allowed: set[str]) -> Template:
        return template(source, allowed, self.where, self.prefix + key)

    def read(self, keys: Mapping[str, Key]) -> dict[str, Any]:
        """Every field in `keys`, in their order, checked and converted (or its default)."""
        values = {}
        for name, key in keys.items():
            value = self.typed(name, key.type, key.default)
            if key.bounds is not None:
                low, high = key.bounds
                if not low <= value <= high:  # nan and inf are outside every range
                    hint = key.hint or f"{low} to {high}"
                    raise self.error(name, f"expected {hint}, got {value!r}")
            problem = key.check(value) if key.check else ""
            if problem:
                raise self.error(name, problem)
            values[name] = key.convert(value) if key.convert else value
        return values


def template(source: str, allowed: set[str], where: str, label: str) -> Template:
    try:
        compiled = compile_template(source, allowed)
        compiled.check_specs(lambda name: _SAMPLES.get(name, ""))
        return compiled
    except TemplateError as e:
        raise RecipeError(f"{where}: {label}: {e}") from None


def check_specs(compiled: Template, where: str, label: str) -> None:
    """A template compiled elsewhere (a step's system) with its format specs checked."""
    try:
        compiled.check_specs(lambda name: _SAMPLES.get(name, ""))
    except TemplateError as e:
        raise RecipeError(f"{where}: {label}: {e}") from None


def no_unknown_keys(table: dict[str, Any], known: set[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise RecipeError(
                f"{where}: {prefix}{key}: unknown field; expected one of {', '.join(sorted(known))}"
            )


def typed(table: dict[str, Any], key: str, kind: Any, where: str, prefix: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = {str: "a string", int: "a whole number", list: "a list"}.get(kind, "a number")
        raise RecipeError(f"{where}: {prefix}{key}: expected {expected}, got {value!r}")
    return value
