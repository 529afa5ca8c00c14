"""What the action tests share: a recipe from TOML text, an action opened on a store."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pipeline import recipe, tomlfile
from pipeline.actions import ActionContext, open_action
from pipeline.actions.base import Action
from pipeline.store.database import Store

TEXT = "[ask]\nprompt = '{text}'\n"
VISION = "[ask]\nkind = 'vision'\nprompt = 'Describe.'\n"
DRAW = "[ask]\nkind = 'txt2img'\nprompt = '{text}'\n"


def recipe_of(text: str) -> recipe.Recipe:
    return recipe.parse(tomlfile.loads(text), Path("r.toml"))


def opened(name: str, text: str, store: Store, **options: Any) -> tuple[Action, io.StringIO]:
    """The action `name` for a recipe, and what it prints."""
    out = io.StringIO()
    context = ActionContext(recipe_of(text), store, out, model="m", **options)
    return open_action(name, context), out
