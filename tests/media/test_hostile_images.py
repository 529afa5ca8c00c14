"""Hostile images (crafted headers: small on disk, huge or slow to decode) and hostile image
servers: each is refused from its header with a one-line reason, or shrunk, never decoded
into gigabytes. The memory and CPU bounds themselves are measured in bench/hostile.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.backends.base import DrawRequest, Rejected
from pipeline.backends.http.sdapi import draw
from pipeline.media import xmp
from pipeline.media.budget import PixelBudget
from pipeline.media.formats import ImageError
from pipeline.media.images import prepare_image
from tests.conftest import run_pipe
from tests.fakes import hostile_images as hostile
from tests.fakes.hostile_images import OversizeSd
from tests.fakes.llama import FakeLlama
from tests.fakes.sd import SdapiClient


class NeverDecodes(PixelBudget):
    """A budget that fails the test if any decode asks it for pixels."""

    @contextmanager
    def use(self, cost: int) -> Iterator[None]:
        raise AssertionError(f"a decode of {cost} pixels was started")
        yield


def hostile_folder(folder: Path) -> dict[str, str]:
    """Each hostile file, made in the folder, and what its reason must say."""
    folder.mkdir()
    hostile.png(folder / "header.png", 4194421, 48, whole=False)
    hostile.tiff(folder / "wide.tif", 200_000, 2)
    hostile.tiff_many_samples(folder / "samples.tif")
    hostile.heic_grid(folder / "grid.heic", 33, 32)
    hostile.jxl_garbage(folder / "b.jxl")
    return {
        "header.png": "image too costly to decode: a 4194421x48 PNG",
        "wide.tif": "image too costly to decode: a 200000x2 TIFF",
        "samples.tif": "TIFF of 263 samples a pixel",
        "grid.heic": "HEIC photo of 33x32 tiles",
        "b.jxl": "unreadable image: Generic Error",
    }


def test_each_hostile_image_fails_with_its_reason_and_a_tall_one_is_shrunk(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "hostile"
    reasons = hostile_folder(folder)
    hostile.png(folder / "tall.png", 50, 200_000)  # 10 MP, streamed a few rows at a time
    with FakeLlama(vision=True) as vision:
        r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--json")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr + r.stdout
    results = {Path(rec["path"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    for name, reason in reasons.items():
        assert results[name]["status"] == "failed", results[name]
        error = results[name]["error"]
        assert error.startswith(reason) and "\n" not in error, error
    assert results["tall.png"]["status"] == "done", results["tall.png"]


@pytest.mark.parametrize(
    "make",
    [
        lambda d: hostile.png(d / "wide.png", 4194421, 48, whole=False),
        lambda d: hostile.tiff(d / "wide.tif", 200_000, 2),
        lambda d: hostile.tiff_many_samples(d / "samples.tif", 6000, 6000),
        lambda d: hostile.heic_grid(d / "grid.heic", 99, 99),
    ],
    ids=["png-4194421x48", "tiff-200000x2", "tiff-263-samples", "heic-99x99-tiles"],
)
def test_a_hostile_image_is_refused_before_any_pixel_is_decoded(make: Any, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(ImageError):
        prepare_image(path, budget=NeverDecodes())


def test_a_tall_image_still_decodes_within_the_budget(tmp_path: Path) -> None:
    path = hostile.png(tmp_path / "tall.png", 50, 200_000)
    budget = PixelBudget()
    assert prepare_image(path, budget=budget).height == 1024
    assert budget.in_use == 0


def test_an_xmp_packet_in_an_unknown_encoding_is_read_as_utf8() -> None:
    assert xmp.read_properties(b'<?xml version="1.0" encoding="QTF-16"?><a/>') == {}
    packet = (
        b'<?xml version="1.0" encoding="QTF-16"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        b' xmp:CreateDate="2020-01-01"/></rdf:RDF></x:xmpmeta>'
    )
    assert xmp.read_properties(packet) == {"xmp:CreateDate": "2020-01-01"}


def test_a_picture_bigger_than_asked_is_refused_from_its_header() -> None:
    request = DrawRequest("a cat", width=64, height=64, steps=1, seed=1)
    with (
        OversizeSd((16000, 16000)) as sd,
        closing(SdapiClient(sd.url, timeout=30)) as backend,
        pytest.raises(Rejected) as caught,
    ):
        draw(backend, request)
    message = str(caught.value)
    assert "16000x16000, bigger than the 64x64 asked for" in message and "\n" not in message


def test_a_run_whose_server_draws_too_big_fails_the_item_with_the_reason(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "fox.txt").write_text("A fox in the snow.\n")
    small = ("--set", "draw.width=64", "--set", "draw.height=64", "--set", "draw.steps=1")
    with FakeLlama() as llama, OversizeSd((16000, 16000)) as sd:
        r = run_pipe(
            "run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url,
            *small, "--json",
        )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    (record,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert record["status"] == "failed" and "16000x16000, bigger than" in record["error"]
    assert not list(notes.glob("*.png"))
