"""`kind = "vision"`: a text step whose items are photos, each sent with the prompt (shrunk
to `image_size` on its long side) to a model that sees images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.steps.base import StepKind
from pipeline.steps.text import KEYS, TextStep

if TYPE_CHECKING:
    from pipeline.engine.call import StepCall


@dataclass(frozen=True)
class VisionStep(TextStep):
    def key(self) -> dict[str, Any]:
        return {**super().key(), "image_size": self.image_size}

    def images(self, call: StepCall) -> tuple[bytes, ...]:
        return (call.loaded.image(call.item.path, self.image_size),)


KIND = StepKind(
    "vision", VisionStep, KEYS, abilities=frozenset({"text", "vision"}), reads_image=True
)
