"""The A1111 image client (pipeline/backends/http/sdapi.py) against FakeSd, and FakeSd against the
koboldcpp 1.76 captures it was built from."""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pipeline.backends.base import (
    BackendError,
    Busy,
    DrawRequest,
    Rejected,
    Transient,
    Unreachable,
)
from pipeline.backends.http import HttpBackend
from pipeline.backends.http.sdapi import (
    IMG2IMG,
    TXT2IMG,
    draw,
    draw_payload,
    draw_timeout,
    probe_images,
    submit,
)
from pipeline.backends.koboldcpp import KoboldBackend
from tests.conftest import DATA, wait_for
from tests.fakes.llama import FakeKobold, FakeLlama, dead_url
from tests.fakes.sd import FakeSd, SdapiClient

CAPTURES = DATA / "captures" / "koboldcpp-sd"
SMALL = DrawRequest("a cat", width=64, height=64, steps=1, seed=1)


def png(mode: str = "RGB", size: tuple[int, int] = (64, 64), colour: int = 90) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour if mode in ("L", "LA") else (colour,) * len(mode)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def sd() -> Iterator[FakeSd]:
    with FakeSd() as server:
        yield server


@pytest.fixture
def backend(sd: FakeSd) -> Iterator[HttpBackend]:
    b = SdapiClient(sd.url, timeout=30)
    yield b
    b.close()


def raises(kind: type[BackendError], call: Any) -> str:
    """The one-line message of the error `call` raises, which must be exactly `kind`."""
    with pytest.raises(BackendError) as caught:
        call()
    assert type(caught.value) is kind, f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    assert message and "\n" not in message
    return message


# -- probe ------------------------------------------------------------------------------
def test_probe_names_the_model_and_its_samplers(backend: HttpBackend) -> None:
    info = probe_images(backend)
    assert info is not None
    assert (info.model, info.server, info.version) == ("random-sd15", "koboldcpp", "1.76")
    assert [s.name for s in info.samplers] == [
        "Euler a",
        "Euler",
        "Heun",
        "DPM2",
        "DPM++ 2M",
        "LCM",
    ]
    assert info.sampler("k_euler_ancestral") == "Euler a"
    assert info.sampler("dpm++ 2m") == "DPM++ 2M"
    assert info.sampler("DDIM") is None  # koboldcpp would silently draw with Euler a


@pytest.mark.parametrize(
    "make",
    [
        lambda: FakeSd(model=None),  # koboldcpp without --sdmodel: txt2img false
        lambda: FakeSd(model=None, a1111=True),  # an A1111 with no checkpoint
        FakeKobold,  # koboldcpp with a text model only
        FakeLlama,  # no /sdapi at all
    ],
    ids=["koboldcpp-no-sdmodel", "a1111-no-checkpoint", "koboldcpp-text", "llama.cpp"],
)
def test_probe_without_an_image_model_is_none(make: Any) -> None:
    with make() as server, closing(SdapiClient(server.url)) as b:
        assert probe_images(b) is None


def test_probe_an_a1111_server() -> None:
    with FakeSd(a1111=True) as server, closing(SdapiClient(server.url)) as b:
        info = probe_images(b)
    assert info is not None
    assert (info.model, info.server) == ("random-sd15.safetensors [6ce0161689]", "a1111")
    assert info.sampler("k_lcm") == "LCM"
    assert server.calls["/api/extra/version"] == 1  # asked once, 404, then the A1111 way


def test_probe_a_server_that_is_down() -> None:
    message = raises(Unreachable, lambda: probe_images(SdapiClient(dead_url())))
    assert "cannot connect" in message


def test_the_text_backend_probes_the_image_server_too() -> None:
    """/api/extra/version and /api/v1/model as koboldcpp answers them with and without a
    text model, so KoboldBackend.probe works on an image-only koboldcpp."""
    with FakeSd() as images_only, FakeSd(text_model="SmolLM2-135M-Instruct.Q4_1") as both:
        alone = KoboldBackend(images_only.url).probe()
        together = KoboldBackend(both.url).probe()
    assert (alone.kind, alone.version, alone.model) == ("koboldcpp", "1.76", "inactive")
    assert together.model == "SmolLM2-135M-Instruct.Q4_1"


# -- txt2img ----------------------------------------------------------------------------
def test_txt2img_sends_every_setting_and_returns_a_checked_png(
    sd: FakeSd, backend: HttpBackend
) -> None:
    request = DrawRequest(
        "a red boat", negative_prompt="blurry", width=128, height=64, steps=3, seed=42
    )
    picture = draw(backend, request)
    assert sd.bodies[TXT2IMG] == {
        "prompt": "a red boat",
        "negative_prompt": "blurry",
        "width": 128,
        "height": 64,
        "steps": 3,
        "cfg_scale": 7.0,
        "sampler_name": "Euler a",
        "seed": 42,
    }
    assert (picture.width, picture.height, picture.seed) == (128, 64, 42)
    with Image.open(io.BytesIO(picture.png)) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (128, 64))


def test_same_seed_same_picture_other_seed_other_picture(backend: HttpBackend) -> None:
    first, again = draw(backend, SMALL), draw(backend, SMALL)
    other = draw(backend, DrawRequest("a cat", width=64, height=64, steps=1, seed=2))
    assert first.sha256 == again.sha256 != other.sha256


def test_the_picture_has_the_size_the_server_drew(sd: FakeSd, backend: HttpBackend) -> None:
    """koboldcpp rounds down to a multiple of 64 and caps the long side at 1024: the
    Picture says what came back, not what was asked."""
    picture = draw(backend, DrawRequest("a cat", width=200, height=2000, steps=1, seed=1))
    assert (picture.width, picture.height) == (64, 1024)
    assert (sd.drawn[-1]["width"], sd.drawn[-1]["height"]) == (64, 1024)


def test_a_seed_in_a1111_info_wins() -> None:
    """A1111 says which seed it drew with in `info`; koboldcpp's info is always ""."""
    with FakeSd(a1111=True) as server, closing(SdapiClient(server.url)) as b:
        picture = submit(b, TXT2IMG, {"prompt": "x", "seed": -1}, seed=-1)
    assert picture.seed == server.drawn[-1]["seed"] >= 0


# -- img2img ----------------------------------------------------------------------------
def test_img2img_sends_bare_base64(sd: FakeSd, backend: HttpBackend) -> None:
    init = png(size=(96, 80))
    request = DrawRequest(
        "a cat", width=64, height=64, steps=1, seed=1, init_image=init, denoising_strength=0.4
    )
    picture = draw(backend, request)
    body = sd.bodies[IMG2IMG]
    assert sd.calls[IMG2IMG] == 1 and TXT2IMG not in sd.calls
    assert base64.b64decode(body["init_images"][0], validate=True) == init  # no data: prefix
    assert body["denoising_strength"] == 0.4 and body["seed"] == 1
    assert sd.drawn[-1]["mode"] == "img2img" and sd.drawn[-1]["init_image"] is not None
    assert (picture.width, picture.height) == (64, 64)
    assert picture.sha256 != draw(backend, SMALL).sha256  # the init image counts


@pytest.mark.parametrize(
    "init",
    [png("RGBA"), png(size=(32, 32)), png("L")],
    ids=["rgba", "32px", "grey"],
)
def test_bad_init_images_end_as_an_empty_image(
    init: bytes, sd: FakeSd, backend: HttpBackend
) -> None:
    request = DrawRequest("a cat", width=64, height=64, steps=1, seed=1, init_image=init)
    message = raises(Transient, lambda: draw(backend, request))
    assert message == (
        f"{sd.url}/sdapi/v1/img2img returned an empty image"
        " (an img2img input must be an RGB picture of 64 to 1024 px a side)"
    )
    assert sd.drawn[-1]["init_image"] is None  # the fake saw why koboldcpp would refuse it


def test_a_data_uri_init_image_ends_as_an_empty_image(sd: FakeSd, backend: HttpBackend) -> None:
    """What `draw` never sends, and why: koboldcpp's base64 decoder stops at the ':'."""
    _, payload = draw_payload(DrawRequest("a cat", width=64, height=64, steps=1, init_image=png()))
    payload["init_images"] = ["data:image/png;base64," + payload["init_images"][0]]
    message = raises(Transient, lambda: submit(backend, IMG2IMG, payload, seed=0))
    assert "returned an empty image (an img2img input must be an RGB picture" in message
    assert sd.drawn[-1]["init_image"] is None


# -- failures ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "kind", "words"),
    [
        ("empty", Transient, "returned an empty image (koboldcpp answers this when it has no"),
        ("bad_input", Rejected, "rejected the request: Error parsing input."),
        ("not_png", Transient, "returned 14 bytes that are not a PNG"),
        ("bad_base64", Transient, "returned an image that is not valid base64"),
        ("damaged_png", Transient, "returned a damaged PNG: "),
        ("jpeg", Rejected, "returned a JPEG picture, not a PNG: set the server's samples_format"),
        ("busy", Busy, "HTTP 503 from"),
        ("500", Transient, "/sdapi/v1/txt2img: RuntimeError: Sizes of tensors must match"),
        ("drop", Transient, "dropped"),
    ],
)
def test_each_failure_is_one_line_of_the_right_kind(
    mode: str, kind: type[BackendError], words: str
) -> None:
    with FakeSd(mode=mode) as server, closing(SdapiClient(server.url)) as b:
        assert words in raises(kind, lambda: draw(b, SMALL))
        assert server.calls[TXT2IMG] == 1


def test_the_first_failures_then_pictures() -> None:
    with (
        FakeSd(failures=["busy", "empty", "not_png"]) as server,
        closing(SdapiClient(server.url)) as b,
    ):
        assert [type(_error(lambda: draw(b, SMALL))) for _ in range(3)] == [
            Busy,
            Transient,
            Transient,
        ]
        assert draw(b, SMALL).width == 64
        assert server.calls[TXT2IMG] == 4


def test_a_server_without_the_image_api_says_how_to_get_one() -> None:
    with FakeLlama() as server, closing(SdapiClient(server.url)) as b:
        message = raises(Rejected, lambda: draw(b, SMALL))
    assert "has no /sdapi/v1/txt2img (HTTP 404)" in message and "--sdmodel" in message


def test_an_empty_body_is_refused_as_koboldcpp_does(sd: FakeSd, backend: HttpBackend) -> None:
    message = raises(Rejected, lambda: submit(backend, TXT2IMG, {}, seed=0))
    assert message == f"{sd.url}/sdapi/v1/txt2img rejected the request: Error parsing input."


def _error(call: Any) -> BackendError:
    try:
        call()
    except BackendError as e:
        return e
    raise AssertionError("no error")


# -- time -------------------------------------------------------------------------------
# Measured on koboldcpp 1.76, CPU (captures/koboldcpp-sd): (width, height, steps, img2img, s).
MEASURED = [
    (64, 64, 1, False, 1.72),
    (64, 64, 4, False, 3.71),
    (128, 64, 1, False, 3.10),
    (64, 64, 1, True, 2.33),
    (64, 64, 4, True, 3.54),
    (512, 512, 1, False, 114.6),
]


@pytest.mark.parametrize(("width", "height", "steps", "img2img", "seconds"), MEASURED)
def test_the_timeout_follows_the_work(
    width: int, height: int, steps: int, img2img: bool, seconds: float
) -> None:
    init = b"png" if img2img else None
    request = DrawRequest("x", width=width, height=height, steps=steps, init_image=init)
    assert draw_timeout(request, floor=0) >= 2 * seconds  # room for a busy CPU
    assert draw_timeout(request, floor=600) >= 600  # never under the text timeout


def test_the_timeout_grows_with_pixels_and_steps() -> None:
    def timeout(w: int, h: int, steps: int, init: bytes | None = None) -> float:
        return draw_timeout(DrawRequest("x", width=w, height=h, steps=steps, init_image=init), 0)

    assert timeout(512, 512, 20) == pytest.approx(20 * timeout(512, 512, 1))
    assert timeout(1024, 1024, 1) == pytest.approx(4 * timeout(512, 512, 1))
    assert timeout(512, 512, 20, b"png") > timeout(512, 512, 20)
    assert timeout(512, 512, 20) == pytest.approx(4 * 64 * 20 * 1.7)  # the documented formula


def test_a_picture_is_not_cut_off_at_the_text_timeout() -> None:
    """The client's own timeout (the text one) is far shorter than this picture takes."""
    with FakeSd(delay=0.5) as server, closing(SdapiClient(server.url, timeout=0.1)) as b:
        assert draw(b, SMALL).width == 64


def test_no_answer_in_time_is_transient() -> None:
    with FakeSd(mode="slow") as server, closing(SdapiClient(server.url)) as b:
        message = raises(
            Transient, lambda: submit(b, TXT2IMG, {"prompt": "x"}, seed=0, timeout=0.2)
        )
    assert "in time" in message


# -- one at a time ----------------------------------------------------------------------
def test_one_picture_at_a_time_the_eighth_request_is_busy() -> None:
    """koboldcpp draws one picture at a time; 6 more requests wait, the next gets 503."""
    gate = threading.Event()
    with FakeSd(gate=gate) as server, closing(SdapiClient(server.url)) as b:
        results: list[object] = []

        def one() -> None:
            try:
                results.append(draw(b, SMALL))
            except BackendError as e:
                results.append(e)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: server.busy_answers == 1 and server.in_flight == 7, what="the queue")
        assert (server.drawing, server.queued) == (1, 6)
        gate.set()
        for thread in threads:
            thread.join(timeout=30)
    assert server.peak_drawing == 1 and server.peak_in_flight == 8  # the 8th, refused
    assert sum(isinstance(r, Busy) for r in results) == 1
    assert sum(getattr(r, "width", 0) == 64 for r in results) == 7


def test_slots_let_pictures_run_together() -> None:
    gate = threading.Event()
    with FakeSd(gate=gate, slots=2) as server, closing(SdapiClient(server.url)) as b:
        threads = [threading.Thread(target=draw, args=(b, SMALL)) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: server.in_flight == 3 and server.drawing == 2, what="two drawing")
        gate.set()
        for thread in threads:
            thread.join(timeout=30)
    assert server.peak_drawing == 2 and server.drawn and len(server.drawn) == 3


# -- the fake against the captures ------------------------------------------------------
def _captures() -> list[Path]:
    return sorted(CAPTURES.glob("[0-9][0-9]-*.json"))


def _init_like(captured: str) -> str:
    """A PNG with the size and colour type of a captured init image, which the capture file
    keeps only the first characters of (enough for the IHDR), with its data: prefix if any."""
    prefix, _, data = (
        captured.rpartition(",") if captured.startswith("data:") else ("", "", captured)
    )
    head = base64.b64decode(data[:36])
    width, height, _, colour = struct.unpack(">IIBB", head[16:26])
    mode = {2: "RGB", 6: "RGBA", 0: "L"}[colour]
    encoded = base64.b64encode(png(mode, (width, height), colour=width)).decode()
    return f"{prefix}," + encoded if prefix else encoded


def _png_facts(text: str) -> dict[str, Any]:
    data = base64.b64decode(text)
    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunks.append(data[i + 4 : i + 8].decode())
        i += 12 + length
    with Image.open(io.BytesIO(data)) as im:
        return {
            "width": im.width,
            "height": im.height,
            "mode": im.mode,
            "text": im.text,
            "chunks": list(dict.fromkeys(chunks)),
            "colour_type": data[25],
        }


def test_the_fake_answers_every_capture_as_koboldcpp_did(sd: FakeSd) -> None:
    """Replays captures/koboldcpp-sd/NN-*.json: same status, same JSON for the GETs, same
    shape of answer, PNGs with the captured size, colour type and chunks, empty images
    exactly where koboldcpp gave them, and equal pictures exactly where its were equal."""
    digests: dict[str, str] = {}  # capture file -> the fake's picture, to compare in pairs
    captured_digest: dict[str, str] = {}
    captures = _captures()
    assert len(captures) == 22  # every capture is replayed: none went missing
    for path in captures:
        capture = json.loads(path.read_text())
        request = capture["request"]
        body = request["body"]
        if body and body.get("init_images"):
            body = {**body, "init_images": [_init_like(body["init_images"][0])]}
        response = httpx.request(
            request["method"],
            sd.url + request["path"],
            content=json.dumps(body).encode() if body is not None else b"",
            timeout=30,
        )
        assert response.status_code == capture["status"], path.name
        answer, expected = response.json(), capture["response"]
        if request["method"] == "GET" or response.status_code != 200:
            assert answer == expected, path.name
            continue
        assert answer["parameters"] == {} and answer["info"] == "" and len(answer["images"]) == 1
        facts = capture["png"][0]
        if not facts["valid"]:
            assert answer["images"] == [""], path.name
            continue
        got = _png_facts(answer["images"][0])
        assert got == {
            "width": facts["width"],
            "height": facts["height"],
            "mode": facts["mode"],
            "text": facts["text_chunks"],
            "chunks": [c.split("(")[0] for c in facts["chunks"]],
            "colour_type": facts["color_type"],
        }, path.name
        digests[path.name] = answer["images"][0]
        captured_digest[path.name] = facts["sha256_16"]
    names = sorted(digests)
    assert len(names) >= 10
    for a in names:
        for b in names:
            same_real = captured_digest[a] == captured_digest[b]
            assert (digests[a] == digests[b]) == same_real, (a, b)
