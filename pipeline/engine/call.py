"""The context a step runs in: what every worker of a run shares (`RunContext`), and one
step of one item (`StepCall`), passed whole instead of long argument lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.answers import Answer
from pipeline.engine.items import Item, Loaded, item_fields
from pipeline.results import Result
from pipeline.steps import IMAGE_SERVER

if TYPE_CHECKING:
    from pipeline.engine.asking import Asker
    from pipeline.engine.drawing import Drawer
    from pipeline.engine.options import Options
    from pipeline.recipe import Recipe
    from pipeline.store.database import Store


@dataclass(frozen=True)
class RunContext:
    """What every worker of one run shares: built once by the Runner."""

    recipe: Recipe
    store: Store
    options: Options
    asker: Asker  # asks the text model's server (the image server for a draw-only recipe)
    drawer: Drawer | None = None  # draws with the image server, if the recipe draws
    # Answers of steps before the last: handed to the main thread, which saves them at once.
    on_answers: Callable[[list[dict[str, Any]]], None] = field(default=lambda rows: None)

    def model(self, server: str) -> str:
        """The model that answers a step of a kind with this `server`."""
        if server == IMAGE_SERVER and self.drawer is not None:
            return self.drawer.model
        return self.asker.info.model


@dataclass
class StepCall:
    """One step of one item, in a worker thread: the item as read, the answers of the
    steps before, and the result being made."""

    run: RunContext
    item: Item
    loaded: Loaded
    answers: dict[str, Answer]  # by step name
    previous: Answer  # the step before's answer ("" for the first)
    result: Result
    seq: int  # the item's place in the input: who gets a free server slot first

    def fields(self, text: str) -> dict[str, Any]:
        """What the prompt may use, with `text` (the item's, fitted) as `{text}`."""
        return {**self.loaded.fields, **self.item_fields(text)}

    def item_fields(self, text: str) -> dict[str, Any]:
        return item_fields(self.item, text, self.answers, self.previous)
