"""A drawing step for one item, in a worker thread: the prompt from the item's fields and
earlier answers, a seed, the photo for img2img, then one picture from the image server
(one of its slots at a time, retried by the run's policy)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import TYPE_CHECKING

from pipeline.answers import Picture
from pipeline.backends import Backend, DrawRequest, Rejected
from pipeline.engine.retry import Interrupted, RetryPolicy
from pipeline.engine.slots import SlotGate
from pipeline.steps.drawing import RANDOM_SEED, DrawStep

if TYPE_CHECKING:
    from pipeline.engine.call import StepCall

MAX_SEED = 2**31 - 1  # what every SD server takes (koboldcpp reads it as a C int)


def content_seed(content_hash: str) -> int:
    """A seed from the item's content: a re-run, or a copy of the file, draws the same."""
    return int.from_bytes(hashlib.sha256(f"seed:{content_hash}".encode()).digest()[:4]) & MAX_SEED


def pick_seed(step: DrawStep, content_hash: str) -> int:
    if step.seed is None:
        return content_seed(content_hash)
    if step.seed == RANDOM_SEED:
        # koboldcpp draws its own from time() and does not say which: pipe picks and records.
        return secrets.randbelow(MAX_SEED + 1)
    return step.seed


class Drawer:
    def __init__(self, backend: Backend, slots: SlotGate, retry: RetryPolicy) -> None:
        self.backend = backend
        self.model = backend.info.image_model
        self.slots = slots
        self.retry = retry

    def draw(self, step: DrawStep, call: StepCall) -> Picture:
        # Pillow is loaded by the first picture, not by every run's start.
        from pipeline.media.pictures import infotext

        prompt = " ".join(step.prompt.render(call.fields(call.loaded.text)).split())
        if not prompt:
            raise Rejected("nothing to draw: the prompt is empty")
        init, width, height = step.start(call.item.path)
        request = DrawRequest(
            prompt=prompt,
            negative_prompt=step.negative_prompt,
            width=width,
            height=height,
            steps=step.steps,
            cfg_scale=step.cfg_scale,
            sampler=self.backend.sampler(step.sampler) or step.sampler,
            seed=pick_seed(step, call.loaded.hash),
            init_image=init,
            denoising_strength=step.denoising_strength,
        )
        result = call.result
        queued = time.monotonic()
        if not self.slots.acquire(call.seq, self.retry.stop):
            raise Interrupted
        result.waited += time.monotonic() - queued
        try:
            picture = self.retry.call(lambda: self.backend.draw(request), result.count_attempt)
        finally:
            self.slots.release()
        text = infotext(
            prompt.replace("\0", ""),
            step.negative_prompt.replace("\0", ""),
            step.steps,
            request.sampler,
            step.cfg_scale,
            picture.seed,
            picture.width,
            picture.height,
            self.model,
            denoising_strength=step.denoising_strength if init else None,
        )
        return picture.with_infotext(text)
