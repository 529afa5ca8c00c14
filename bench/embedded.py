"""Benchmark and crash test: `--write embedded` under SIGKILL (issue #18).

  embedded-kill  200 photos (JPEG with a camera's EXIF, PNG, WebP, TIFF), the real CLI
                 writing captions into them, killed with SIGKILL 20 times at random points
                 and re-run until done: target every photo decodes to the same pixels as
                 before at every kill and at the end (none truncated), every photo holds
                 its caption, and `pipe undo` restores all 200 byte for byte

The kills land where the journal of replaced files says the run has got to (a random
number of photos further on each time; no fixed sleeps), with every step of the
replacement widened by a short pause (tests/fakes/pausing_cli.py) so kills also land
between the journal and the rename. `tests/e2e/test_embedded_kills.py` runs the same with
fewer photos and kills.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tests.fakes.llama import FakeLlama
from tests.media.second_reader import pixels, xmp_fields

ROOT = Path(__file__).resolve().parent.parent
CAMERA = ROOT / "tests" / "data" / "photos" / "gps" / "DSCN0029.jpg"
KINDS = (".jpg", ".png", ".webp", ".tif")
Report = Callable[[str, dict[str, Any], bool, str], None]


def make_photos(folder: Path, n: int, seed: int = 18) -> None:
    """`n` small photos, each different, in every writable format; the JPEGs carry the
    EXIF (GPS, maker notes) of a real camera."""
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    with Image.open(CAMERA) as camera:
        exif = camera.info["exif"]
        base = camera.resize((64, 48))
    for i in range(n):
        image = base.copy()
        for bit in range(12):  # the index as black and white squares: every photo differs
            shade = 255 if i >> bit & 1 else 0
            image.paste((shade, shade, shade), (bit * 5, 0, bit * 5 + 5, 5))
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (0, 40, 64, 48))
        ext = KINDS[i % len(KINDS)]
        extra = {"exif": exif, "quality": 90} if ext == ".jpg" else {}
        image.save(folder / f"photo_{i:04}{ext}", **extra)


@dataclass
class Outcome:
    photos: int
    kills: int = 0
    runs: int = 0
    killed_mid_replace: int = 0  # a kill that left a replacement journaled but unsettled
    changed_pixels: list[str] = field(default_factory=list)  # at any check
    missing_captions: list[str] = field(default_factory=list)
    temp_files_left: int = 0
    rerun_asked: int = 0  # model calls of a run after the last (all finished)
    rerun_replaced: int = 0
    asked: int = 0  # model calls in all: over `photos`, the photos asked again after a kill
    not_restored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        return not (
            self.changed_pixels
            or self.missing_captions
            or self.not_restored
            or self.rerun_asked
            or self.rerun_replaced
        )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _count(db: Path, where: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute(f"SELECT COUNT(*) FROM replaced WHERE {where}").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not made yet
            return 0


def _wait(fact: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not fact():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run to get on")
        time.sleep(0.005)


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _check_pixels(folder: Path, before: dict[str, str], out: Outcome) -> None:
    for path in _photos(folder):
        try:
            same = pixels(path) == before[path.name]
        except OSError:  # truncated or unreadable
            same = False
        if not same:
            out.changed_pixels.append(path.name)


def kill_and_undo(
    home: Path, n: int, kills: int, seed: int = 20261203, pause: float = 0.002
) -> Outcome:
    """The whole test: photos in `home`'s folder, kills, a final run, checks, undo."""
    folder, db = home / "album", home / "pipe-home" / "pipe.db"
    make_photos(folder, n)
    originals = {p.name: _digest(p) for p in _photos(folder)}
    before = {p.name: pixels(p) for p in _photos(folder)}
    env = {**os.environ, "PIPE_HOME": str(home / "pipe-home")}
    env.pop("PIPE_DB", None)
    out, started = Outcome(n), time.monotonic()
    command = [sys.executable, "-m", "tests.fakes.pausing_cli", str(pause), "run"]
    with FakeLlama(vision=True, slots=2) as server:
        command += ["describe-images", str(folder), "--backend", server.url, "-q"]
        command += ["--write", "embedded"]
        check = lambda: _check_pixels(folder, before, out)  # noqa: E731
        _killed_runs(command, env, db, random.Random(seed), kills, out, check)
        while True:  # then runs until one ends cleanly
            out.runs += 1
            r = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if out.runs > kills + 5:
                raise AssertionError(f"pipe never finished: {r.stderr.strip()[-500:]}")
        # Once done, a re-run asks nothing and writes nothing.
        out.asked = asked = server.generate_calls
        replaced = _count(db, "1")
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
        out.rerun_asked = server.generate_calls - asked
        out.rerun_replaced = _count(db, "1") - replaced
    _check_pixels(folder, before, out)
    out.missing_captions = [p.name for p in _photos(folder) if not xmp_fields(p)[0]]
    out.temp_files_left = sum(1 for p in folder.iterdir() if p.name.startswith(".pipe-"))
    undo_all(env)
    for name, sha in originals.items():
        if not (folder / name).exists() or _digest(folder / name) != sha:
            out.not_restored.append(name)
    out.seconds = time.monotonic() - started
    return out


def _killed_runs(
    command: list[str],
    env: dict[str, str],
    db: Path,
    rng: random.Random,
    kills: int,
    out: Outcome,
    check: Callable[[], None],
) -> None:
    """Start the run and SIGKILL it once it has replaced a random number more photos;
    `check` the photos after each kill."""
    for i in range(kills):
        done = _count(db, "state = 'applied'")
        if done >= out.photos:
            return
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # A few photos further each time, leaving room for every kill before the end.
        k = rng.randrange(done, done + max(1, (out.photos - 2 * kills) // kills))
        # Every other kill waits for a replacement under way too (journaled, not yet marked):
        # inside the protocol, where the old and new files change places.
        inside = "" if i % 2 else " AND EXISTS (SELECT 1 FROM replaced WHERE state = 'planned')"
        where = f"state = 'applied'{inside}"
        _wait(lambda k=k, p=proc, w=where: _count(db, w) > k or p.poll() is not None)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out.runs += 1
        out.kills += proc.returncode == -signal.SIGKILL
        out.killed_mid_replace += _count(db, "state = 'planned'") > 0
        check()


def undo_all(env: dict[str, str]) -> None:
    """`pipe undo`, newest run first, until nothing is left to undo."""
    undo = [sys.executable, "-m", "pipeline", "undo"]
    for _ in range(100):
        r = subprocess.run(undo, cwd=ROOT, env=env, capture_output=True, text=True)
        if "nothing to undo" in r.stderr:
            return
        if r.returncode != 0:
            raise AssertionError(f"pipe undo failed: {r.stderr.strip()}")
    raise AssertionError("pipe undo never finished")


def bench_embedded_kill(tmp: Path, report: Report) -> None:
    out = kill_and_undo(tmp / "embedded-kill", 200, 20)
    figures = {
        "photos": out.photos,
        "kills": out.kills,
        "runs": out.runs,
        "killed mid-replace": out.killed_mid_replace,
        "pixels changed": len(out.changed_pixels),
        "captions missing": len(out.missing_captions),
        "temp files left": out.temp_files_left,
        "model calls": out.asked,
        "re-run: model calls, photos written": f"{out.rerun_asked}, {out.rerun_replaced}",
        "not restored by undo": len(out.not_restored),
        "seconds": round(out.seconds, 1),
    }
    report("embedded-kill", figures, out.met, "same pixels always, all restored byte for byte")
