"""What a recipe step answers: text from a language model, or a picture from an image model.

A `Picture` travels from the image backend through the cache to the actions. Its PNG bytes
live in the image store beside the database (see state.py), never in a JSON record: what
people see of it is its path, size, sha256 and seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Picture:
    png: bytes
    width: int
    height: int
    seed: int  # the seed it was drawn with (pipe always sends one, so it is always known)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()

    def describe(self) -> dict[str, object]:
        """The picture as records show it (`--json`, `pipe show`): never the pixels."""
        return {
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "seed": self.seed,
        }


Answer = str | Picture
