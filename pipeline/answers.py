"""What a recipe step answers: text from a language model, or a picture from an image model.

A `Picture` travels from the image backend through the cache to the actions. Its PNG bytes
are kept in the store's `pictures` table and loaded only when an action needs them (a
re-run of a finished folder reads none); what people see of it is its path, size, sha256
and seed, never the pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    seed: int  # the seed it was drawn with (pipe always sends one, so it is always known)
    sha256: str  # of the PNG as the server drew it
    png: bytes | None = None  # None: in the store, not loaded
    infotext: str = ""  # how it was drawn, in AUTOMATIC1111's "parameters" form

    @classmethod
    def of(cls, png: bytes, width: int, height: int, seed: int) -> Picture:
        return cls(width, height, seed, hashlib.sha256(png).hexdigest(), png)

    def with_infotext(self, infotext: str) -> Picture:
        return replace(self, infotext=infotext)

    def describe(self) -> dict[str, Any]:
        """The picture as records show it (`--json`, `pipe show`): never the pixels."""
        return {
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "seed": self.seed,
        }

    def to_json(self) -> str:
        """The cache's record of it (the PNG itself goes in the `pictures` table)."""
        return json.dumps({**self.describe(), "infotext": self.infotext}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Picture:
        d = json.loads(text)
        return cls(d["width"], d["height"], d["seed"], d["sha256"], None, d.get("infotext", ""))


Answer = str | Picture
