"""Benchmark: hostile images (issue 15), each alone through `pipe run describe-images` against
a vision fake at default -j, and a Stable Diffusion answer of 16000x16000 through
`pipe run thumbnails`. Every file is crafted from headers (a few bytes to 880 KB on disk,
never downloaded) and kept in bench/results/hostile/.

Reports each run's peak RSS and CPU seconds (user + system) of the pipe process, and whether
each file was refused (with its reason) or shrunk. Targets: <= 300 MB and <= 5 s of CPU
for every file; <= 300 MB for one folder of all of them with the corpus's photos and
damaged copies of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "hostile"
TARGET_RSS_MB = 300
TARGET_CPU_S = 5.0

# Reports RSS in KB and CPU seconds of pipe alone (see LAUNCHER in bench/__main__.py).
_LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(json.dumps([u.ru_maxrss, u.ru_utime + u.ru_stime]))\n"
    "sys.exit(code)\n"
)


def _files() -> dict[str, Callable[[Path], Path]]:
    from tests.fakes import hostile_images as h

    return {
        "wide 6000000x50.png": lambda p: h.png(p, 6_000_000, 50),
        "wide 3000000x100.tif": lambda p: h.tiff(p, 3_000_000, 100),
        "header 4194421x48.png": lambda p: h.png(p, 4194421, 48, whole=False),
        "wide 100000x1000.png": lambda p: h.png(p, 100_000, 1000),  # just under the line
        "tall 50x6000000.png": lambda p: h.png(p, 50, 6_000_000),
        "samples 1048624x64x263.tif": lambda p: h.tiff_many_samples(p),
        "samples 6000x6000x263.tif": lambda p: h.tiff_many_samples(p, 6000, 6000),
        "grid 99x99.heic": lambda p: h.heic_grid(p, 99, 99),
        "grid 32x32 of 64px.heic": lambda p: h.heic_grid(p, 32, 32),
        "b.jxl": h.jxl_garbage,
    }


def make_files() -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in _files().items():
        path = CACHE / name
        if not path.exists():
            part = path.with_name("part-" + name)
            make(part).rename(path)
        paths.append(path)
    return paths


def _run(args: list[str], home: Path) -> tuple[int, float, dict[str, Any]]:
    """pipe with `args`: peak RSS in MB, CPU seconds, and its one --json record."""
    with tempfile.NamedTemporaryFile(suffix=".rusage") as usage:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, usage.name, sys.executable, "-m", "pipeline", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PIPE_HOME": str(home)},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        rss, cpu = json.loads(Path(usage.name).read_text())
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        sys.exit(f"pipe failed ({proc.returncode}): {proc.stderr[-800:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return round(rss / 1024), round(cpu, 2), records[0] if records else {}


def _outcome(record: dict[str, Any]) -> str:
    if record.get("status") == "failed":
        return "refused: " + str(record.get("error", ""))[:90]
    return str(record.get("status", "?"))


def bench_hostile(tmp: Path) -> dict[str, Any]:
    from tests.fakes.hostile_images import OversizeSd
    from tests.fakes.llama import FakeLlama

    rows: dict[str, Any] = {}
    with FakeLlama(vision=True) as vision:
        for n, path in enumerate(make_files()):
            folder = tmp / f"hostile-{n}"
            folder.mkdir()
            (folder / path.name).symlink_to(path)
            args = ["run", "describe-images", str(folder), "--backend", vision.url, "--json"]
            rss, cpu, record = _run(args, tmp / f"home-hostile-{n}")
            rows[path.name] = {"MB": rss, "cpu s": cpu, "outcome": _outcome(record)}
    rows[FOLDER] = _folder_row(tmp)
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "fox.txt").write_text("A fox in the snow.\n")
    small = ["--set", "draw.width=64", "--set", "draw.height=64", "--set", "draw.steps=1"]
    with FakeLlama() as llama, OversizeSd((16000, 16000)) as sd:
        sd.answer = _sd_answer()
        args = ["run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url]
        rss, cpu, record = _run([*args, *small, "--json"], tmp / "home-hostile-sd")
        rows["SD answer 16000x16000.png"] = {"MB": rss, "cpu s": cpu, "outcome": _outcome(record)}
    met = all(r["MB"] <= TARGET_RSS_MB for r in rows.values()) and all(
        r["cpu s"] <= TARGET_CPU_S for name, r in rows.items() if name != FOLDER
    )
    return {"files": rows, "met": met}


def _sd_answer() -> bytes:
    """A whole 16000x16000 PNG of black (746 KB), made once."""
    from tests.fakes import hostile_images as h

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "sd-16000x16000.png"
    if not path.exists():
        h.png(CACHE / "part-sd.png", 16000, 16000).rename(path)
    return path.read_bytes()


CORPUS = ROOT / "tests" / "data" / "photos"  # the tests' real photos
FOLDER = "one folder of all of them"  # its CPU is the whole folder's: the RSS target only


def _folder_row(tmp: Path) -> dict[str, Any]:
    """Every hostile file together with the corpus's real photos and damaged copies of them
    (bytes flipped, cut short: made here from a fixed seed), in one folder at default -j:
    the pixel budget must hold for a whole folder, not only for one file at a time."""
    import random

    from tests.fakes.llama import FakeLlama

    folder = tmp / "hostile-folder"
    folder.mkdir()
    for path in make_files():
        (folder / path.name).symlink_to(path)
    photos = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    chance = random.Random(15)
    for n, photo in enumerate(photos):
        data = bytearray(photo.read_bytes())
        (folder / f"{n:03}-{photo.name}").write_bytes(data)
        for _ in range(20):  # a flipped byte anywhere past the first 2
            data[chance.randrange(2, len(data))] = chance.randrange(256)
        (folder / f"{n:03}-flipped-{photo.name}").write_bytes(data)
        (folder / f"{n:03}-cut-{photo.name}").write_bytes(data[: len(data) // 3])
    with FakeLlama(vision=True) as vision:
        args = ["run", "describe-images", str(folder), "--backend", vision.url, "--json"]
        rss, cpu, _ = _run(args, tmp / "home-hostile-folder")
    files = sum(1 for _ in folder.iterdir())
    return {"MB": rss, "cpu s": cpu, "outcome": f"{files} files in one run"}
