"""Integration: the image client against a real koboldcpp 1.76 drawing with a random-weight
Stable Diffusion 1.5 (pictures of noise by design; the model load, text encoder, sampler,
VAE, PNG and HTTP are all real). One image-only server for the module: it starts in ~4 s
and draws a 64x64 picture with one step in ~2 s.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.backends.base import DrawRequest, Request, Transient
from pipeline.backends.http import HttpBackend
from pipeline.backends.http.sdapi import (
    IMG2IMG,
    draw,
    draw_payload,
    probe_images,
    submit,
)
from pipeline.backends.koboldcpp import KoboldBackend
from pipeline.media.pictures import init_image_for_img2img
from tests import real_servers
from tests.conftest import CORPUS
from tests.fakes.sd import SdapiClient

pytestmark = pytest.mark.real

SMALL = DrawRequest("a lighthouse at dusk", width=64, height=64, steps=1, seed=7)
EMPTY = "returned an empty image (an img2img input must be an RGB picture of 64 to 1024 px a side)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real_servers.RealServer]:
    with real_servers.koboldcpp_sd(tmp_path_factory.mktemp("kobold-sd")) as running:
        yield running


@pytest.fixture
def backend(server: real_servers.RealServer) -> Iterator[HttpBackend]:
    b = SdapiClient(server.url, timeout=60)
    yield b
    b.close()


def test_probe_finds_the_model_and_samplers(backend: HttpBackend) -> None:
    info = probe_images(backend)
    assert info is not None
    assert (info.model, info.server, info.version) == ("random-sd15-shared", "koboldcpp", "1.76")
    assert info.sampler("k_euler_a") == "Euler a" and len(info.samplers) == 6


def test_txt2img_is_a_png_of_the_size_asked_and_the_same_for_the_same_seed(
    backend: HttpBackend,
) -> None:
    first = draw(backend, SMALL)
    assert (first.width, first.height, first.seed) == (64, 64, 7)
    with Image.open(io.BytesIO(first.png)) as im:
        assert (im.format, im.mode, im.size, im.text) == (
            "PNG",
            "RGB",
            (64, 64),
            {"parameters": ""},
        )
    assert draw(backend, SMALL).sha256 == first.sha256


def test_img2img_from_a_corpus_photo(backend: HttpBackend) -> None:
    path = CORPUS / "cameras" / "Canon_PowerShot_S40.jpg"
    init = init_image_for_img2img(path, 256).png
    with Image.open(io.BytesIO(init)) as im:
        assert im.mode == "RGB" and max(im.size) == 256
    request = DrawRequest(
        "a lighthouse at dusk", width=64, height=64, steps=1, seed=7, init_image=init
    )
    picture = draw(backend, request)
    assert (picture.width, picture.height) == (64, 64)
    assert picture.sha256 != draw(backend, SMALL).sha256


def _png(mode: str, size: int) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (size, size), (40, 90, 160, 255)[: len(mode)]).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("bad", ["rgba", "32px", "data-uri"])
def test_the_init_images_koboldcpp_refuses_end_as_the_empty_image_error(
    bad: str, backend: HttpBackend
) -> None:
    """koboldcpp answers each of these with 200 and `images: [""]` (captures 18-20)."""
    init = {"rgba": _png("RGBA", 64), "32px": _png("RGB", 32), "data-uri": _png("RGB", 64)}[bad]
    request = DrawRequest("a cat", width=64, height=64, steps=1, seed=1, init_image=init)
    _, payload = draw_payload(request)
    if bad == "data-uri":  # what draw() never sends
        payload["init_images"] = ["data:image/png;base64," + payload["init_images"][0]]
        assert base64.b64decode(payload["init_images"][0].split(",")[1]) == init
    with pytest.raises(Transient) as caught:
        submit(backend, IMG2IMG, payload, seed=1, timeout=60)
    assert str(caught.value) == f"{backend.url}{IMG2IMG} {EMPTY}"


def test_one_koboldcpp_for_text_and_pictures(tmp_path: Path) -> None:
    """`--model` and `--sdmodel` together: the text backend and the image client share it."""
    with real_servers.koboldcpp_sd(tmp_path, text=True) as both:
        kobold = KoboldBackend(both.url, timeout=120)
        try:
            info = kobold.probe()
            assert "SmolLM2" in info.model
            assert kobold.complete(Request("Say hello.", max_tokens=4)).text.strip()
            images = probe_images(kobold)
            assert images is not None and images.model == "random-sd15-shared"
            assert draw(kobold, SMALL).width == 64
        finally:
            kobold.close()
