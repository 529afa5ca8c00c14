"""Recipe steps that draw: `kind = "txt2img"` (a picture from a prompt) and `"img2img"` (the
item's photo redrawn from a prompt), sent to an A1111-style image API.

Every value is checked against what koboldcpp really does with it: it rounds sizes down to
a multiple of 64 within 64..1024 and clamps steps to 1..80 and cfg_scale to 1..25, silently.
A recipe value it would change is an error naming the field, so the picture is always the
one the recipe asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import RecipeError
from pipeline.templates import Template

DRAW_KINDS = ("txt2img", "img2img")
DRAW_KEYS = {
    "name",
    "kind",
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "steps",
    "cfg_scale",
    "sampler",
    "seed",
    "denoising_strength",
    "image_size",
}
RANDOM_SEED = -1
SIDE = (64, 1024, 64)  # min, max, step of a picture's side
STEPS = (1, 80)
CFG = (1.0, 25.0)


@dataclass(frozen=True)
class DrawStep:
    name: str
    kind: str  # txt2img | img2img
    prompt: Template
    negative_prompt: str = ""
    width: int = 512  # txt2img; img2img follows the photo's shape within image_size
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str = "Euler a"
    seed: int | None = None  # None: from the item's content; -1: a new random one each time
    denoising_strength: float = 0.6  # img2img: how far from the photo (0 keeps it)
    image_size: int = 512  # img2img: the long side of the picture drawn

    @property
    def draws(self) -> bool:
        return True

    def key(self) -> dict[str, Any]:
        """Everything that shapes the picture (for cache fingerprints)."""
        key: dict[str, Any] = {
            "kind": self.kind,
            "prompt": self.prompt.source,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "sampler": self.sampler,
            "seed": self.seed,
        }
        if self.kind == "img2img":
            key.update(denoising_strength=self.denoising_strength, image_size=self.image_size)
        else:
            key.update(width=self.width, height=self.height)
        return key


def parse_draw_step(
    raw: dict[str, Any], name: str, kind: str, prompt: Template, where: str, typed: Any
) -> DrawStep:
    """The drawing fields of a step table; `typed(table, key, type, default)` reads one
    field or raises a RecipeError naming it."""

    def ranged(key: str, kind_: Any, default: Any, low: float, high: float, hint: str) -> Any:
        value = typed(raw, key, kind_, default)
        if not low <= value <= high:
            raise RecipeError(f"{where}{key}: expected {hint}, got {value!r}")
        return value

    low, high, step = SIDE
    sides = {}
    for key in ("width", "height", "image_size"):
        value = ranged(key, int, 512, low, high, f"{low} to {high} pixels")
        if value % step:
            raise RecipeError(
                f"{where}{key}: expected a multiple of {step} (image servers round {value} down"
                f" to {value - value % step}), got {value}"
            )
        sides[key] = value
    seed = typed(raw, "seed", int, None)
    if seed is not None and seed < RANDOM_SEED:
        raise RecipeError(f"{where}seed: expected a seed >= 0, or -1 for a random one")
    sampler = typed(raw, "sampler", str, "Euler a").strip()
    if not sampler:
        raise RecipeError(f"{where}sampler: expected a sampler name such as 'Euler a'")
    return DrawStep(
        name=name,
        kind=kind,
        prompt=prompt,
        negative_prompt=typed(raw, "negative_prompt", str, ""),
        width=sides["width"],
        height=sides["height"],
        steps=ranged("steps", int, 20, *STEPS, f"{STEPS[0]} to {STEPS[1]}"),
        cfg_scale=float(ranged("cfg_scale", (int, float), 7.0, *CFG, "1 to 25")),
        sampler=sampler,
        seed=seed,
        denoising_strength=float(
            ranged("denoising_strength", (int, float), 0.6, 0.0, 1.0, "0 to 1")
        ),
        image_size=sides["image_size"],
    )
