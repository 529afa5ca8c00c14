"""What happens to each answer. One registry: the `[then]` table's keys and checks
(`then.py`), the `--write` choices and construction all come from `ACTIONS`. A new action
is a module with an `Action` subclass that declares its `then_keys` and `needs`
(`keys.py`), plus one line here.

Loading a recipe imports every action's module to read its keys, so those modules import
only light things at the top; what is heavy (Pillow for the image action) is imported
when the action uses it, which a run that writes sidecars (or a cron re-run) never does."""

from __future__ import annotations

import importlib

from pipeline.actions.base import Action, ActionContext, write_output
from pipeline.results import ActionError, Result

# name: (module, class, offered by `--write`); each class says the same (tests check it).
ACTIONS: dict[str, tuple[str, str, bool]] = {
    "print": ("pipeline.actions.base", "Action", True),
    "sidecar": ("pipeline.actions.sidecar", "Sidecar", True),
    "xmp": ("pipeline.actions.xmp", "XmpSidecar", True),
    "embedded": ("pipeline.actions.embedded", "EmbeddedAction", True),  # into the photo
    "rename": ("pipeline.actions.rename", "RenameAction", False),  # answers must be names
    "image": ("pipeline.actions.image", "ImageAction", False),  # the recipe must draw
}
WRITE_ALIASES = {"stdout": "print"}  # `--write stdout` reads better than `--write print`


def write_choices() -> list[str]:
    """What `--write` offers: the actions any recipe's answers can go to."""
    return [*WRITE_ALIASES, *(name for name, (_, _, choosable) in ACTIONS.items() if choosable)]


def action_class(name: str) -> type[Action]:
    module, cls, _ = ACTIONS[WRITE_ALIASES.get(name, name)]
    found: type[Action] = getattr(importlib.import_module(module), cls)
    return found


def open_action(name: str, context: ActionContext) -> Action:
    """The action for a run: the recipe's `then.action`, or what `--write` asks for."""
    return action_class(name).open(context)


__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "ActionError",
    "Result",
    "action_class",
    "open_action",
    "write_choices",
    "write_output",
]
