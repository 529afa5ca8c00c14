"""What the drawing kinds share (txt2img.py, img2img.py): their settings, sent to an
A1111-style image API.

Every value is checked against what koboldcpp really does with it: it rounds sizes down to
a multiple of 64 within 64..1024 and clamps steps to 1..80 and cfg_scale to 1..25, silently.
A recipe value it would change is an error naming the field, so the picture is always the
one the recipe asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.steps.base import Step
from pipeline.steps.table import Key

if TYPE_CHECKING:
    from pipeline.answers import Answer
    from pipeline.engine.call import StepCall

RANDOM_SEED = -1
SIDE = (64, 1024, 64)  # min, max, step of a picture's side
STEPS = (1, 80)
CFG = (1.0, 25.0)


def _side(value: int) -> str:
    step = SIDE[2]
    if not value % step:
        return ""
    return (
        f"expected a multiple of {step} (image servers round {value} down"
        f" to {value - value % step}), got {value}"
    )


def _seed(value: int | None) -> str:
    if value is not None and value < RANDOM_SEED:
        return "expected a seed >= 0, or -1 for a random one"
    return ""


def _sampler(value: str) -> str:
    return "" if value.strip() else "expected a sampler name such as 'Euler a'"


def _strip(value: str) -> str:
    return value.strip()


_SIDE = Key(int, 512, SIDE[:2], hint=f"{SIDE[0]} to {SIDE[1]} pixels", check=_side)
# In the order they are checked (the first wrong one is the error).
KEYS = {
    "width": _SIDE,
    "height": _SIDE,
    "image_size": _SIDE,
    "seed": Key(int, None, check=_seed),
    "sampler": Key(str, "Euler a", check=_sampler, convert=_strip),
    "negative_prompt": Key(str, ""),
    "steps": Key(int, 20, STEPS, hint=f"{STEPS[0]} to {STEPS[1]}"),
    "cfg_scale": Key((int, float), 7.0, CFG, hint="1 to 25", convert=float),
    "denoising_strength": Key((int, float), 0.6, (0.0, 1.0), hint="0 to 1", convert=float),
}


@dataclass(frozen=True)
class DrawStep(Step):
    negative_prompt: str = ""
    width: int = 512  # txt2img; img2img follows the photo's shape within image_size
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str = "Euler a"
    seed: int | None = None  # None: from the item's content; -1: a new random one each time
    denoising_strength: float = 0.6  # img2img: how far from the photo (0 keeps it)
    image_size: int = 512  # img2img: the long side of the picture drawn

    def key(self) -> dict[str, Any]:
        """Everything that shapes the picture (for cache fingerprints)."""
        return {
            "kind": self.kind,
            "prompt": self.prompt.source,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "sampler": self.sampler,
            "seed": self.seed,
        }

    def cache_key(self, content_hash: str, model: str, inputs: dict[str, str]) -> list[Any]:
        # The content matters to a seed drawn from it (and to img2img, which redraws it).
        content = content_hash if self.seed is None else None
        return ["draw", content, model, self.key(), inputs]

    def start(self, path: str) -> tuple[bytes | None, int, int]:
        """The picture to start from (a PNG, for the image API) and the size to draw."""
        return None, self.width, self.height

    def answer(self, call: StepCall) -> Answer:
        drawer = call.run.drawer
        assert drawer is not None, "a drawing recipe needs an image server"
        return drawer.draw(self, call)
