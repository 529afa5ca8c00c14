"""What happens to each answer. One registry: recipe validation (`then.action`), the
`--write` choices and construction all come from `ACTIONS`. A new action is a module
with an `Action` subclass, plus one line here."""

from __future__ import annotations

from pipeline.actions.base import Action, ActionContext, ActionError, Result, write_output
from pipeline.actions.image import ImageAction
from pipeline.actions.sidecar import Sidecar
from pipeline.actions.xmp import XmpSidecar
from pipeline.renaming.action import RenameAction

ACTIONS: dict[str, type[Action]] = {
    cls.name: cls for cls in (Action, Sidecar, XmpSidecar, RenameAction, ImageAction)
}
WRITE_ALIASES = {"stdout": "print"}  # `--write stdout` reads better than `--write print`


def write_choices() -> list[str]:
    """What `--write` offers: the actions any recipe's answers can go to."""
    return [*WRITE_ALIASES, *(name for name, cls in ACTIONS.items() if cls.choosable)]


def open_action(name: str, context: ActionContext) -> Action:
    """The action for a run: the recipe's `then.action`, or what `--write` asks for."""
    return ACTIONS[WRITE_ALIASES.get(name, name)].open(context)


__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "ActionError",
    "Result",
    "open_action",
    "write_choices",
    "write_output",
]
