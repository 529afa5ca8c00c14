"""Benchmark: a folder of big photos through `pipe run describe-images` (issue #8).

20 HEICs of 12 MP and 4 of 48 MP (made with pillow-heif as iPhones store them: a grid of
512 px tiles), 2 PNGs and 2 TIFFs of 100 MP, against a vision fake at default -j. Reports the
pipe process's peak RSS (target <= 300 MB) and wall time over 3 runs (median and range), and
checks at the fake that every uploaded image is <= 1024 px on its long side.

The photos are made once (about 2 minutes) and kept in bench/results/big-photos/.
"""

from __future__ import annotations

import base64
import io
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "big-photos"
TARGET_RSS_MB = 300
MAX_SIDE = 1024
RUNS = 3
# name pattern, count, (width, height), format
SET = [
    ("IMG_{:04}.HEIC", 20, (4032, 3024), "HEIF"),
    ("IMG_{:04}_48MP.HEIC", 4, (8064, 6048), "HEIF"),
    ("pano_{:02}.png", 2, (12500, 8000), "PNG"),
    ("pano_{:02}.tif", 2, (12500, 8000), "TIFF"),
]

# Runs in its own process: painting a 100 MP photo takes ~1 GB, which must not count
# against the pipe processes this benchmark starts.
_MAKE = """
import sys
from PIL import Image
import pillow_heif
width, height, fmt, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
size = (width, height)
# Smooth tones, blotchy detail and grain, so the files are photo-sized, not a few KB.
detail = Image.effect_noise((width // 40, height // 40), 64).convert("L")
base = Image.merge("RGB", (
    Image.linear_gradient("L").resize(size),
    detail.resize(size, Image.Resampling.BICUBIC),
    Image.radial_gradient("L").resize(size),
))
grain = Image.effect_noise(size, 24).convert("RGB")
photo = Image.blend(base, grain, 0.3)
del base, grain, detail
if fmt == "HEIF":
    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6  # a portrait shot, as phones store it
    photo.save(path, "HEIF", quality=70, tile_size=512, exif=exif.tobytes(),
               enc_params={"preset": "ultrafast"})
elif fmt == "TIFF":
    photo.save(path, "TIFF", compression="tiff_adobe_deflate")
else:
    photo.save(path, "PNG", compress_level=1)
"""


def make_photos(folder: Path) -> list[Path]:
    """The benchmark's photos: one of each kind painted, the rest copies made unique (a
    different file each, for pipe's content hash) without changing a pixel."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pattern, count, (width, height), fmt in SET:
        first = folder / pattern.format(0)
        if not first.exists():
            part = first.with_suffix(".part" + first.suffix)
            subprocess.run(
                [sys.executable, "-c", _MAKE, str(width), str(height), fmt, str(part)],
                check=True,
                cwd=ROOT,
            )
            part.rename(first)
        data = first.read_bytes()
        for i in range(count):
            path = folder / pattern.format(i)
            if not path.exists():
                path.write_bytes(data + _padding(fmt, i))
            paths.append(path)
    return paths


def _padding(fmt: str, i: int) -> bytes:
    if i == 0:
        return b""
    if fmt == "HEIF":  # an ISO-BMFF 'free' box: skipped by every reader
        return (12).to_bytes(4, "big") + b"free" + i.to_bytes(4, "big")
    return b"%08d" % i  # bytes after PNG's IEND or past TIFF's data are never read


def bench_big_photos(tmp: Path, pipe: Callable[..., tuple[float, Any, int]]) -> dict[str, Any]:
    """`pipe`: bench's runner, which reports the pipe process's own peak RSS."""
    from tests.fakes.llama import FakeLlama

    photos = make_photos(CACHE)
    sides: list[int] = []

    class Fake(FakeLlama):
        def read_prompt(self, h: Any, body: dict[str, Any]) -> tuple[str | None, list[str]]:
            text, images = super().read_prompt(h, body)
            from PIL import Image

            for data in images:
                with Image.open(io.BytesIO(base64.b64decode(data))) as im:
                    sides.append(max(im.size))
            return text, images

    rss_mb, walls = [], []
    with Fake(vision=True) as server:  # one slot: default -j is 1, plus 2 read-ahead
        for i in range(RUNS):
            args = ("run", "describe-images", str(CACHE), "--backend", server.url, "-q")
            wall, _, rss = pipe(*args, "--redo", env={"PIPE_HOME": str(tmp / f"home-big-{i}")})
            rss_mb.append(round(rss / 1024))
            walls.append(round(wall, 1))
    uploaded_ok = len(sides) == RUNS * len(photos) and max(sides) <= MAX_SIDE
    figures = {
        "photos": len(photos),
        "MP": round(sum(w * h * n for _, n, (w, h), _ in SET) / 1e6),
        "peak RSS MB median": statistics.median(rss_mb),
        "runs": rss_mb,
        "wall s median": statistics.median(walls),
        "wall runs": walls,
        "uploads": len(sides),
        "longest side": max(sides, default=0),
    }
    figures["met"] = uploaded_ok and max(rss_mb) <= TARGET_RSS_MB
    return figures
