"""Integration: `pipe run` drawing through a real koboldcpp 1.76 that serves SmolLM2 as its
text model and a random-weight Stable Diffusion 1.5 (`--sdmodel`) in the same process:
thumbnails (a prompt from the text model, then txt2img) with a kill and a resume, and
restyle-images (img2img) from a real photo and from inputs koboldcpp would refuse raw.
The pictures are noise by design; every step of the path is real."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import real_servers
from tests.conftest import CORPUS, pipe_cmd, run_pipe, wait_for

pytestmark = pytest.mark.real

SMALL = (
    "--set",
    "steps.draw.width=64",
    "--set",
    "steps.draw.height=64",
    "--set",
    "steps.draw.steps=1",
)


@pytest.fixture(scope="module")
def kobold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real_servers.RealServer]:
    with real_servers.koboldcpp_sd(tmp_path_factory.mktemp("kobold-both"), text=True) as server:
        yield server


def perf(server: real_servers.RealServer) -> dict:
    """koboldcpp's own counters: total_gens (text) and total_img_gens (pictures)."""
    return httpx.get(f"{server.url}/api/extra/perf", timeout=10).json()


def idle(server: real_servers.RealServer) -> bool:
    p = perf(server)
    return p["idle"] == 1 and p["queue"] == 0


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def write_notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(1, n + 1):
        (folder / f"trip{i}.md").write_text(
            f"Day {i} of the trip: a walk along the harbour, boats, gulls and a red lighthouse.\n"
        )
    return folder


def test_thumbnails_from_one_koboldcpp_for_text_and_pictures(
    kobold: real_servers.RealServer, tmp_path: Path
) -> None:
    notes = write_notes(tmp_path / "notes", 3)
    before = perf(kobold)
    # No --sd-backend: the text server says it can draw, so it draws.
    r = run_pipe(
        "run", "thumbnails", str(notes), "--backend", kobold.url, *SMALL, "--json", "-v",
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "drawing with koboldcpp" in r.stderr
    after = perf(kobold)
    assert after["total_gens"] - before["total_gens"] == 3
    assert after["total_img_gens"] - before["total_img_gens"] == 3
    for record in records(r.stdout):
        with Image.open(record["image"]["path"]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
            assert f"Seed: {record['image']['seed']}" in im.info["parameters"]
            assert "Model: random-sd15" in im.info["parameters"]
    # A re-run asks and draws nothing; the pictures stay as they are.
    r = run_pipe(
        "run", "thumbnails", str(notes), "--backend", kobold.url, *SMALL, "-v", timeout=600
    )
    assert r.returncode == 0 and "3 skipped" in r.stderr
    assert perf(kobold)["total_gens"] == after["total_gens"]
    assert perf(kobold)["total_img_gens"] == after["total_img_gens"]


def test_killed_mid_run_the_rerun_asks_only_what_was_not_answered(
    kobold: real_servers.RealServer, tmp_path: Path, pipe_home: Path
) -> None:
    notes = write_notes(tmp_path / "notes", 5)
    db = pipe_home / "pipe.db"

    def scenes() -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as c:
                return c.execute("SELECT COUNT(*) FROM cache WHERE step = 'scene'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    cmd = pipe_cmd("run", "thumbnails", str(notes), "--backend", kobold.url, *SMALL)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: scenes() >= 2, timeout=300, what="two prompts saved")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: idle(kobold), timeout=120, what="koboldcpp finished what was in flight")
    saved, before = scenes(), perf(kobold)
    r = run_pipe(
        "run", "thumbnails", str(notes), "--backend", kobold.url, *SMALL, "--json", timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert len(list(notes.glob("*.md.png"))) == 5
    # Every saved prompt was reused; at most the pictures in flight were drawn again.
    assert perf(kobold)["total_gens"] - before["total_gens"] == 5 - saved
    assert perf(kobold)["total_img_gens"] - before["total_img_gens"] <= 5


def test_restyle_from_a_real_photo_and_inputs_koboldcpp_refuses_raw(
    kobold: real_servers.RealServer, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    corpus = CORPUS / "cameras" / "Canon_PowerShot_S40.jpg"
    shutil.copy(corpus, photos / "canon.jpg")
    # Raw, koboldcpp answers an empty image for each of these; pipe prepares them first.
    Image.new("RGBA", (200, 120), (10, 200, 30, 100)).save(photos / "alpha.png")
    Image.new("RGB", (32, 32), (200, 10, 10)).save(photos / "tiny.png")
    Image.new("L", (128, 128), 90).save(photos / "grey.png")
    r = run_pipe(
        "run",
        "restyle-images",
        str(photos),
        "--backend",
        kobold.url,
        "--json",
        "--set",
        "steps.draw.steps=1",
        "--set",
        "steps.draw.image_size=64",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    done = {Path(x["path"]).name: x["image"] for x in records(r.stdout)}
    assert set(done) == {"canon.jpg", "alpha.png", "tiny.png", "grey.png"}
    for name, image in done.items():
        with Image.open(image["path"]) as im:
            assert im.mode == "RGB" and max(im.size) == 64, name
