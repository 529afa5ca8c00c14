"""What every step kind shares: the fields of every step (name, kind, prompt) and the
declaration each kind module makes of itself (`StepKind`), which recipe parsing, the engine,
the doctor and the choice of servers read instead of naming kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.hints import FIELDS as HINT_FIELDS
from pipeline.steps.table import Key
from pipeline.templates import Template

if TYPE_CHECKING:
    from pipeline.answers import Answer
    from pipeline.engine.call import StepCall

# Which server answers a step.
TEXT_SERVER = "text"  # the text model's server
IMAGE_SERVER = "image"  # the image server (`--sd-backend`, or one that also draws)
# What a step answers.
TEXT = "text"
PICTURE = "picture"
# Fields every prompt may use; steps add their own names. The hints (`{folder}` ...) are
# read only for a recipe whose templates use them (pipeline/hints).
ITEM_FIELDS = {"text", "name", "path", "stem", "ext", "answer", "exif", *HINT_FIELDS}
SHARED_KEYS = {"name", "kind", "prompt"}  # every step table's fields besides its kind's


@dataclass(frozen=True)
class Step:
    """A step of a recipe, as every kind has it; each kind's step class adds its settings."""

    name: str
    kind: str
    prompt: Template

    @property
    def draws(self) -> bool:
        """Answers a picture (not text)."""
        from pipeline.steps import kind_of  # the registry imports this module

        return kind_of(self).answers == PICTURE

    def templates(self) -> tuple[Template, ...]:
        """The templates rendered per item: the prompt, and a text step's system."""
        return (self.prompt,)

    def key(self) -> dict[str, Any]:
        """Everything in this step that shapes the model request (for cache fingerprints)."""
        raise NotImplementedError

    def cache_key(self, content_hash: str, model: str, inputs: dict[str, str]) -> list[Any]:
        """What this step's cached answer depends on: the item's content, the model that
        answers, the step's settings and the earlier answers its prompt reads."""
        return [content_hash, model, self.key(), inputs]

    def answer(self, call: StepCall) -> Answer:
        """Ask the step's server for the answer of one item (in a worker thread)."""
        raise NotImplementedError


@dataclass(frozen=True)
class StepKind:
    """A kind of step (`kind = "NAME"` in a recipe), as its module declares it."""

    name: str
    step: type[Step]  # built from the shared fields and the values of `keys`
    keys: Mapping[str, Key]  # the table's fields besides name, kind and prompt, in order
    abilities: frozenset[str]  # what its server must be able to do (backends.base.ABILITIES)
    server: str = TEXT_SERVER  # which server answers it
    answers: str = TEXT  # what it answers: TEXT or PICTURE
    reads_image: bool = False  # the items are images (photos), not text

    def build(self, name: str, prompt: Template, values: dict[str, Any]) -> Step:
        return self.step(name=name, kind=self.name, prompt=prompt, **values)  # type: ignore[call-arg]
