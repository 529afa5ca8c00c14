"""Sidecar merge (issue #18): `python -m bench sidecar-merge`.

A darktable sidecar with 30 fields beside each of 20 photos; `pipe run describe-images
--write xmp` (the real CLI, a fake vision server) merges pipe's caption into each. Target:
every sidecar keeps all 30 fields, read back by a second XMP reader (ElementTree over the
RDF, tests/fakes/sidecars.py), and a re-run writes nothing. Also shown: one merge's time
in-process (exiv2 through pipeline.media.xmp.fields), the median of 200.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.media.xmp.fields import XmpFields, merge_sidecar
from tests.fakes.llama import FakeLlama
from tests.fakes.sidecars import DARKTABLE, properties

Report = Callable[[str, dict[str, Any], bool, str], None]
PHOTOS = 20


def _pipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip


def _kept(before: dict[str, Any], after: dict[str, Any]) -> int:
    """How many of `before`'s fields `after` still holds (pipe's own may have grown)."""
    kept = 0
    for name, value in before.items():
        now = after.get(name)
        if isinstance(value, dict | list) and isinstance(now, type(value)):
            kept += all(item in now for item in value)
        elif name.startswith("exif:GPS") and isinstance(now, str):
            kept += now.rstrip("NSEW").rstrip("0") == value.rstrip("NSEW").rstrip("0")
        else:
            kept += now == value
    return kept


def bench_sidecar_merge(tmp: Path, report: Report) -> None:
    folder = tmp / "sidecars"
    folder.mkdir()
    for i in range(PHOTOS):
        Image.new("RGB", (32, 24), (i * 9, 80, 160)).save(folder / f"IMG_{i:03}.jpg")
        (folder / f"IMG_{i:03}.jpg.xmp").write_text(DARKTABLE)
    before = properties(DARKTABLE)
    with FakeLlama(vision=True, slots=4) as server:
        run = ("run", "describe-images", str(folder), "--backend", server.url, "--write", "xmp")
        first = _pipe(tmp / "home-sidecars", *run)
        written = {p: p.stat().st_mtime_ns for p in folder.glob("*.xmp")}
        again = _pipe(tmp / "home-sidecars", *run)
    kept = [_kept(before, properties(p.read_bytes())) for p in sorted(written)]
    rewritten = sum(p.stat().st_mtime_ns != mtime for p, mtime in written.items())
    times = []
    data = DARKTABLE.encode()
    for _ in range(200):
        started = time.perf_counter()
        merge_sidecar(data, XmpFields(description="A harbour at dawn."))
        times.append(time.perf_counter() - started)
    ok = first.returncode == again.returncode == 0 and min(kept) == 30 and rewritten == 0
    report(
        "sidecar-merge",
        {
            "fields kept": f"{min(kept)} of {len(before)}",
            "sidecars": len(kept),
            "rewritten by a re-run": rewritten,
            "merge ms": round(statistics.median(times) * 1000, 2),
        },
        ok,
        "a darktable sidecar with 30 fields keeps all 30; a re-run writes nothing",
    )
