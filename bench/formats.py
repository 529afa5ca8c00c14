"""Benchmark: which decoder for which format (`python -m bench formats`).

Each photo is brought to 1024 px by each candidate, in a fresh process per run (3 runs):
wall time and the decode's own peak RSS (VmHWM after, less before; imports excluded).

  pillow     Pillow whole (draft() for JPEG), as pipe did for every format before #8
  libvips    pyvips thumbnail: streams PNG/TIFF, shrink-on-load for JPEG and WebP
  pipe       prepare_image as it is (HEIC: pillow-heif a tile at a time; PNG/TIFF/WebP:
             libvips shrinking across, then down; encoding the JPEG included)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "formats"
RUNS = 3

_WORKER = """
import sys, time
from PIL import Image
how, path = sys.argv[1], sys.argv[2]
Image.MAX_IMAGE_PIXELS = None

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

if how == "pillow":
    import pillow_heif
    from pipeline.media.decoding import to_plain_mode
    pillow_heif.register_heif_opener()
    def run():
        with Image.open(path) as im:
            im.draft("RGB", (1024, 1024))
            im.load()
            im = to_plain_mode(im)
            im.thumbnail((1024, 1024), Image.Resampling.BOX, reducing_gap=3.0)
elif how == "libvips":
    import pyvips
    pyvips.cache_set_max(0)
    def run():
        pyvips.Image.thumbnail(path, 1024).copy_memory()
else:
    from pipeline.media import prepare_image
    from pipeline.media.formats import register_heif
    from pipeline.media.vips_source import _pyvips
    register_heif(), _pyvips()  # imports are not the decode
    def run():
        prepare_image(path)

before = hwm()
start = time.perf_counter()
run()
print(time.perf_counter() - start, hwm() - before)
"""

_CANDIDATES = {
    "JPEG": ("pillow", "libvips"),
    "PNG": ("pillow", "libvips", "pipe"),
    "TIFF": ("pillow", "libvips", "pipe"),
    "WEBP": ("pillow", "libvips", "pipe"),
    "GIF": ("pillow", "libvips"),
    "HEIF": ("pillow", "pipe"),
}


def make_files() -> list[tuple[str, Path]]:
    from bench.big_photos import CACHE as BIG
    from bench.big_photos import make_photos

    make_photos(BIG)
    CACHE.mkdir(parents=True, exist_ok=True)
    files = [
        ("HEIF", BIG / "IMG_0000.HEIC"),
        ("HEIF", BIG / "IMG_0000_48MP.HEIC"),
        ("PNG", BIG / "pano_00.png"),
        ("TIFF", BIG / "pano_00.tif"),
    ]
    jpeg = CACHE / "photo-24mp.jpg"
    if not jpeg.exists():
        subprocess.run(
            [sys.executable, "-c", "import sys; from bench.media import make_photo; "
             "make_photo(sys.argv[1])", str(jpeg)],
            check=True,
            cwd=ROOT,
        )  # fmt: skip
    for fmt, ext in (("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        path = CACHE / f"photo-24mp.{ext}"
        if not path.exists():
            code = (
                "import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
                "im = im.convert('P') if sys.argv[3] == 'GIF' else im; "
                "im.save(sys.argv[2], sys.argv[3])"
            )
            subprocess.run(
                [sys.executable, "-c", code, str(jpeg), str(path), fmt], check=True, cwd=ROOT
            )
        files.append((fmt, path))
    return [("JPEG", jpeg), *files]


def measure(how: str, path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, how, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def bench_formats() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for fmt, path in make_files():
        for how in _CANDIDATES[fmt]:
            runs = [measure(how, path) for _ in range(RUNS)]
            seconds = sorted(r[0] for r in runs)
            mb = sorted(r[1] for r in runs)
            figures[f"{path.name} {how}"] = (
                f"{statistics.median(seconds):.2f} s ({seconds[0]:.2f}-{seconds[-1]:.2f}), "
                f"+{statistics.median(mb):.0f} MB ({mb[0]:.0f}-{mb[-1]:.0f})"
            )
    return figures


def main() -> None:
    print(json.dumps(bench_formats(), indent=1), flush=True)


if __name__ == "__main__":
    main()
