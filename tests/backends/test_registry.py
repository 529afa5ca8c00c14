"""The backend registry is the one list of kinds: a kind defined here (one class, one
registry line) is detected, opened by its prefix, tried on its default port, named in the
doctor's advice, the "not as ..." error and the CLI's help, with nothing else edited."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.backends import (
    DefaultPort,
    Request,
    Unrecognised,
    connect,
    detect,
    registry,
)
from pipeline.backends.base import Backend
from pipeline.doctor import checks as doctor
from pipeline.servers import connection
from tests.backends.toy import TOY_HINT, TOY_VISION, ToyBackend
from tests.fakes.llama import free_port


class FakeToy:
    """A real HTTP server on 127.0.0.1 speaking the toy protocol; it also lists its model at
    /v1/models, as many servers do, which only the registry's fallback order tells apart.
    `toy=False`: a server that answers, but as no kind (404 everywhere)."""

    def __init__(self, toy: bool = True) -> None:
        self.toy = toy
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.paths.append(self.path)
                if fake.toy and self.path == "/api/toy":
                    self.reply(200, {"toy": True, "model": "toy-1"})
                elif fake.toy and self.path == "/v1/models":
                    self.reply(200, {"object": "list", "data": [{"id": "toy-1"}]})
                else:
                    self.reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                fake.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if fake.toy and self.path == "/api/toy/say":
                    self.reply(200, {"text": f"toy says {body.get('prompt')}"})
                else:
                    self.reply(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeToy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeToy]:
    """A toy server up, and the toy kind registered with its port as the default."""
    with FakeToy() as server:
        monkeypatch.setattr(ToyBackend, "ports", (DefaultPort(server.port, TOY_HINT, rank=5),))
        # The one registry line: appended after the fallback, which is still tried last.
        monkeypatch.setattr(registry, "REGISTRY", (*registry.REGISTRY, ToyBackend))
        monkeypatch.delenv("PIPE_DEFAULT_BACKENDS", raising=False)
        yield server


def test_a_new_kind_is_detected_before_the_fallback(toy: FakeToy) -> None:
    assert detect(toy.url) == "toy"  # its /v1/models would have made it "openai"
    assert "/api/toy" in toy.paths and "/v1/models" not in toy.paths
    backend = connect(toy.url)
    try:
        assert isinstance(backend, ToyBackend)
        assert (backend.info.kind, backend.info.model) == ("toy", "toy-1")  # probed
        assert backend.complete(Request("hi")).text == "toy says hi"
    finally:
        backend.close()


def test_its_prefix_opens_it_without_detection(toy: FakeToy) -> None:
    backend = connect(f"toy:127.0.0.1:{toy.port}/v1")
    try:
        assert isinstance(backend, ToyBackend) and backend.url == toy.url
        assert "/api/extra/version" not in toy.paths  # no detection: koboldcpp not asked
    finally:
        backend.close()
    assert registry.normalize_url(f"toy:{toy.url}/") == toy.url


def test_its_default_port_is_tried_first_by_rank(toy: FakeToy) -> None:
    assert registry.default_urls("text")[0] == toy.url
    assert toy.url not in registry.default_urls("pictures")  # it serves text only
    with connection.open_backend([], wait=0, timeout=10, say=lambda message: None) as backend:
        assert isinstance(backend, ToyBackend)


def test_a_pool_shares_out_jobs_to_it_when_its_slots_are_not_known(toy: FakeToy) -> None:
    backend = connect(toy.url)
    try:
        assert connection._slots_of(backend, 3) == 3  # slots_known = False: its share of -j
        assert connection._slots_of(backend, 0) == 2  # without -j: what it said
    finally:
        backend.close()


def test_the_doctor_gives_its_start_and_vision_hints(toy: FakeToy) -> None:
    assert doctor.start_hint(f"http://127.0.0.1:{toy.port}") == TOY_HINT
    found = doctor.check(toy.url, "text", "flag --backend", doctor.Probe(timeout=10), True)
    assert found.kind == "toy" and found.works and found.vision is False
    assert f"no vision: {TOY_VISION}" in found.advice


def test_the_not_as_message_and_the_cli_help_name_it(toy: FakeToy) -> None:
    with FakeToy(toy=False) as nobody:
        with pytest.raises(Unrecognised) as caught:
            detect(nobody.url)
        found = doctor.check(nobody.url, "text", "flag --backend", doctor.Probe(), False)
    assert str(caught.value).endswith(
        "answers, but not as Toy, llama.cpp, llamafile, koboldcpp or an OpenAI API"
    )
    assert found.advice == [
        "is this a model server? for an OpenAI-compatible one pass --backend openai:URL"
    ]
    forms = registry.url_forms()  # a kind with a prefix is listed by it, in rank order
    assert forms.startswith("http://HOST:PORT (llama.cpp, llamafile, koboldcpp; detected), toy:")
    assert forms.endswith(", or cli:FILE.llamafile (run once per file, no server)")


def test_the_cli_help_is_the_registry_s() -> None:
    from pipeline import cli

    [option] = [p for p in cli.run.params if p.name == "backend_urls"]
    assert f"A server: {registry.url_forms()}; or embedded, the embedded model." in str(option.help)
    assert "openai:URL" in str(option.help) and "cli:FILE.llamafile" in str(option.help)


ATTRIBUTES: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "title": str,
    "signature": str,
    "fallback": bool,
    "prefix": str,
    "prefix_help": str,
    "ports": tuple,
    "serves": frozenset,
    "vision_hint": str,
    "slots_known": bool,
}


@pytest.mark.parametrize("kind", registry.REGISTRY, ids=lambda k: k.__name__)
def test_every_registered_kind_declares_what_it_is(kind: type[Backend]) -> None:
    for name, expected in ATTRIBUTES.items():
        assert isinstance(getattr(kind, name), expected), f"{kind.__name__}.{name}"
    assert "kind" in vars(kind) and "title" in vars(kind), "its own name, not its base's"
    assert kind.signature or kind.prefix, "detected, or named by a prefix: else unreachable"
    assert bool(kind.prefix) == bool(kind.prefix_help), "a prefix is said in --backend's help"
    assert kind.prefix.endswith(":") or not kind.prefix
    if kind.prefix:  # connect() opens it by Backend.open (HttpBackend's, or its own)
        assert kind.open.__func__ is not Backend.open.__func__  # type: ignore[attr-defined]
    assert kind.serves and kind.serves <= {"text", "pictures"}
    assert kind.vision_hint
    for port in kind.ports:
        assert isinstance(port, DefaultPort) and port.start_hint.startswith("start ")
    assert not kind.__abstractmethods__  # probe() and complete() implemented


def test_kinds_do_not_collide() -> None:
    kinds = registry.REGISTRY
    assert len({k.kind for k in kinds}) == len(kinds)
    prefixes = [k.prefix for k in kinds if k.prefix]
    assert len(set(prefixes)) == len(prefixes)
    ports = [p for k in kinds for p in k.ports]
    assert len({p.number for p in ports}) == len(ports)
    assert len({p.rank for p in ports}) == len(ports)  # the order of default ports is stated
    assert [k.fallback for k in registry.detected()][-1:] == [True]  # the fallback is last
