"""`kind = "txt2img"`: a picture drawn from a prompt, `width` by `height`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.steps.base import IMAGE_SERVER, PICTURE, StepKind
from pipeline.steps.drawing import KEYS, DrawStep


@dataclass(frozen=True)
class Txt2ImgStep(DrawStep):
    def key(self) -> dict[str, Any]:
        return {**super().key(), "width": self.width, "height": self.height}


KIND = StepKind(
    "txt2img",
    Txt2ImgStep,
    KEYS,
    abilities=frozenset({"txt2img"}),
    server=IMAGE_SERVER,
    answers=PICTURE,
)
