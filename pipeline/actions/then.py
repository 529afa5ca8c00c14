"""A recipe's `[then]` table, read from what the registered actions declare.

The table holds `action` (which action takes the answers), `date` (which date `{exif.date}`
is, for prompts and names alike) and every registered action's keys (`keys.py`). Each
action's keys are read and checked at load whatever `then.action` says: `--write` may
choose another action at run time, and a typo should not wait for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pipeline.actions import ACTIONS, action_class
from pipeline.actions.keys import ChoiceKey, Needs, Reading, choice_key, key_names, read_keys
from pipeline.errors import RecipeError
from pipeline.steps import PICTURE, TEXT, Step, kind_of
from pipeline.steps.table import no_unknown_keys

DATES = ("original", "mtime")
S = TypeVar("S")


@dataclass(frozen=True)
class TableKeys:
    """The table's own keys, beside `action` and the actions' keys."""

    date: str = choice_key("original", DATES)


@dataclass(frozen=True)
class Then:
    """The `[then]` table as read: the action, and every action's settings."""

    action: str = "print"
    date: str = "original"  # the photo's own date, or the file's mtime
    settings: tuple[Any, ...] = ()  # one instance of each action's keys dataclass

    def get(self, keys: type[S]) -> S:
        """An action's settings: as the recipe set them, else its keys' defaults."""
        for found in self.settings:
            if type(found) is keys:  # exactly: a subclass's keys are another action's
                return cast(S, found)
        return keys()


def read_then(then: Any, steps: Sequence[Step], where: str) -> Then:
    """The `[then]` table checked and read; RecipeError says what is wrong, as
    `{where}: then.KEY: ...`."""
    if not isinstance(then, dict):
        raise RecipeError(f"{where}: then: expected a table")
    keys_of = {action_class(name).then_keys: None for name in ACTIONS}  # in order, once each
    declared = [k for keys in keys_of if keys for k in key_names(keys)]
    no_unknown_keys(then, {"action", *key_names(TableKeys), *declared}, where, "then.")
    reading = Reading(where, frozenset(s.name for s in steps))
    action = ChoiceKey(tuple(ACTIONS)).read(then.get("action", "print"), reading, "then.action")
    settings = tuple(read_keys(keys, then, reading, "then.") for keys in keys_of if keys)
    problem = action_problem(steps, action)
    if problem:
        raise reading.refuse("then.action", problem)
    table: TableKeys = read_keys(TableKeys, then, reading, "then.")
    return Then(action, table.date, settings)


def action_problem(steps: Sequence[Step], action: str) -> str:
    """Why `action` cannot take these steps' answers ("" when it can), from what it
    declares it needs: for `then.action` and for `--write`, before any model is asked."""
    return needs_problem(action, action_class(action).needs, steps)


def needs_problem(action: str, needs: Needs, steps: Sequence[Step]) -> str:
    draws = steps[-1].draws
    if needs.answer == PICTURE and not draws:
        return f"{action!r} needs a last step that draws"
    if needs.answer == TEXT and draws:
        return f'{action!r} needs text, but the last step draws; use action = "image"'
    if needs.photos and not any(kind_of(s).reads_image for s in steps):
        return f"{action!r} describes photos, but this recipe reads no image; use sidecar"
    return ""
