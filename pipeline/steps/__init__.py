"""Step kinds: each is one module declaring its `KIND` (its keys, how they are read, what
its cache key reads, the abilities its server needs, what it answers and how it runs).
`KINDS` is the registry recipe parsing, the engine, the doctor and the choice of servers
read; a new kind is one module and one entry here."""

from __future__ import annotations

from pipeline.steps import img2img, keywords, text, txt2img, vision
from pipeline.steps.base import IMAGE_SERVER, PICTURE, TEXT, TEXT_SERVER, Step, StepKind

# The first is the default (`kind` left out); the order is the order errors list them in.
KINDS: dict[str, StepKind] = {
    kind.name: kind for kind in (text.KIND, vision.KIND, txt2img.KIND, img2img.KIND, keywords.KIND)
}
DEFAULT_KIND = "text"


def kind_of(step: Step) -> StepKind:
    return KINDS[step.kind]


__all__ = [
    "DEFAULT_KIND",
    "IMAGE_SERVER",
    "KINDS",
    "PICTURE",
    "TEXT",
    "TEXT_SERVER",
    "Step",
    "StepKind",
    "kind_of",
]
