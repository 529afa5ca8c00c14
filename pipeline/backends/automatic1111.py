"""AUTOMATIC1111's web UI API (also Forge and SD.Next), started with `--api`: an image
server only. Pictures go through http/sdapi.py, as for koboldcpp."""

from __future__ import annotations

from typing import Any

from pipeline.answers import Picture
from pipeline.backends.base import (
    Completion,
    DefaultPort,
    DrawRequest,
    Rejected,
    Request,
    ServerInfo,
)
from pipeline.backends.http import HttpBackend, sdapi
from pipeline.backends.http.sdapi import ImageModelInfo


class A1111Backend(HttpBackend):
    kind = "automatic1111"
    title = "AUTOMATIC1111"
    signature = "/sdapi/v1/options"
    ports = (
        DefaultPort(
            7860,
            "start AUTOMATIC1111 (or Forge, SD.Next) with --api, or pass --sd-backend URL",
            rank=50,
        ),
    )
    serves = frozenset({"pictures"})
    images: ImageModelInfo | None = None  # what probe() found

    @classmethod
    def recognises(cls, body: Any) -> bool:
        return isinstance(body, dict) and "sd_model_checkpoint" in body

    def probe(self) -> ServerInfo:
        self.images = images = sdapi.probe_images(self)
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=images.model if images else "",
            slots=1,  # A1111 draws one picture at a time
            abilities=frozenset({"txt2img", "img2img"} if images else ()),
            image_model=images.model if images else "",
            version=images.version if images else "",
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        raise Rejected(f"{self.url} is an image server; give a text model with --backend")

    def draw(self, request: DrawRequest) -> Picture:
        return sdapi.draw(self, request)

    def sampler(self, wanted: str) -> str | None:
        return self.images.sampler(wanted) if self.images else None
