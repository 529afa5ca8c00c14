"""`kind = "img2img"`: the item's photo redrawn from a prompt, `image_size` on its long side,
`denoising_strength` away from the photo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.steps.base import IMAGE_SERVER, PICTURE, StepKind
from pipeline.steps.drawing import KEYS, DrawStep


@dataclass(frozen=True)
class Img2ImgStep(DrawStep):
    def key(self) -> dict[str, Any]:
        return {
            **super().key(),
            "denoising_strength": self.denoising_strength,
            "image_size": self.image_size,
        }

    def cache_key(self, content_hash: str, model: str, inputs: dict[str, str]) -> list[Any]:
        return ["draw", content_hash, model, self.key(), inputs]  # the photo is the input

    def start(self, path: str) -> tuple[bytes | None, int, int]:
        # Pillow is loaded by the first picture, not by every run's start.
        from pipeline.media.pictures import init_image_for_img2img

        # Prepared as koboldcpp needs it: an RGB PNG, 64..1024 px a side.
        return init_image_for_img2img(path, self.image_size)


KIND = StepKind(
    "img2img",
    Img2ImgStep,
    KEYS,
    abilities=frozenset({"img2img"}),
    server=IMAGE_SERVER,
    answers=PICTURE,
    reads_image=True,
)
