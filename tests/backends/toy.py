"""A backend kind made for the tests, as a new kind is made: this one module and one line in
`pipeline.backends.registry.REGISTRY` (the tests add it with monkeypatch). A made-up server:
`GET /api/toy` says what it is, `POST /api/toy/say` answers."""

from __future__ import annotations

from typing import Any

from pipeline.backends import Completion, DefaultPort, Request, ServerInfo
from pipeline.backends.http import HttpBackend

TOY_HINT = "start 'toy serve' or pass --backend URL"
TOY_VISION = "give the toy eyes: toy serve --eyes"


class ToyBackend(HttpBackend):
    """A made-up kind of server: `GET /api/toy` says what it is, `POST /api/toy/say` answers."""

    kind = "toy"
    title = "Toy"
    signature = "/api/toy"
    prefix = "toy:"
    prefix_help = "toy:URL (a toy server, not detected)"
    ports = (DefaultPort(1, TOY_HINT, rank=5),)  # the fake's port, set by the fixture
    vision_hint = TOY_VISION
    slots_known = False

    @classmethod
    def recognises(cls, body: Any) -> bool:
        return isinstance(body, dict) and body.get("toy") is True

    def probe(self) -> ServerInfo:
        response = self.send("GET", "/api/toy", timeout=5)
        self.raise_for_status(response)
        body = self.json(response)
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=str(body["model"]),
            slots=2,
            abilities=frozenset({"text"}),
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        response = self.send("POST", "/api/toy/say", {"prompt": request.prompt})
        self.raise_for_status(response)
        return Completion(text=str(self.json(response)["text"]))
