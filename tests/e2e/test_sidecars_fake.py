"""End to end: `--write xmp` merges into the sidecars photo managers wrote, through the real
CLI against a fake vision server; `pipe undo` puts them back byte for byte, `pipe runs`
shows what is kept for that, `pipe prune` frees it; a SIGKILL at any instant leaves every
sidecar old or new, and undo settles the journal and restores them."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipeline.cli.prune import size_text
from tests.conftest import ROOT, run_pipe, wait_for
from tests.fakes.llama import FakeLlama
from tests.fakes.sidecars import DARKTABLE, properties

PHOTO = ROOT / "samples" / "photos" / "DSCN0010.jpg"


@pytest.fixture
def vision() -> FakeLlama:
    with FakeLlama(vision=True, slots=2) as server:
        yield server


def album(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "album"
    folder.mkdir()
    shutil.copy2(PHOTO, folder / PHOTO.name)
    sidecar = folder / f"{PHOTO.name}.xmp"
    sidecar.write_text(DARKTABLE)
    return folder, sidecar


def kept(pipe_home: Path) -> set[str]:
    """The kept bytes' files (named by their sha256; not pipe's lock)."""
    folder = pipe_home / "replaced"
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


def journal(pipe_home: Path, query: str) -> list[tuple]:
    with sqlite3.connect(pipe_home / "pipe.db") as db:
        return db.execute(query).fetchall()


def test_write_xmp_merges_and_undo_restores_byte_for_byte(
    vision: FakeLlama, tmp_path: Path, pipe_home: Path
) -> None:
    folder, sidecar = album(tmp_path)
    run = ("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    r = run_pipe(*run)
    assert r.returncode == 0, r.stderr
    merged = sidecar.read_bytes()
    after = properties(merged)
    assert after["dc:description"]["x-default"] and after["xmp:Rating"] == "3"
    assert len(after) == 30 and "darktable:history" in after
    again = run_pipe(*run)  # cron: nothing new, nothing written
    assert again.returncode == 0 and sidecar.read_bytes() == merged
    assert journal(pipe_home, "SELECT COUNT(*) FROM replaced") == [(1,)]
    runs = run_pipe("runs")
    assert f"replaced files kept for undo: {size_text(len(DARKTABLE))}\n" in runs.stdout
    first = json.loads(run_pipe("runs", "--json").stdout.splitlines()[-1])
    assert first["kept_bytes"] == len(DARKTABLE)
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    assert sidecar.read_text() == DARKTABLE  # byte for byte
    assert r.stdout == f"restored {sidecar}\n"
    assert r.stderr.endswith(": 1 files put back as they were, 0 kept\n")
    assert run_pipe("undo").stderr.startswith("pipe: nothing to undo: run ")


def test_undo_removes_a_sidecar_pipe_made_and_keeps_one_changed_since(
    vision: FakeLlama, tmp_path: Path
) -> None:
    folder, sidecar = album(tmp_path)
    shutil.copy2(PHOTO, folder / "second.jpg")
    made = folder / "second.jpg.xmp"
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    assert r.returncode == 0, r.stderr
    sidecar.write_text(sidecar.read_text().replace('xmp:Rating="3"', 'xmp:Rating="5"'))
    changed = sidecar.read_bytes()
    r = run_pipe("undo")
    assert r.returncode == 1
    assert not made.exists() and sidecar.read_bytes() == changed
    assert f"{sidecar}: not undone: changed since pipe wrote it; kept\n" in r.stderr
    assert r.stdout == f"removed {made}\n"


def test_prune_frees_the_kept_bytes_and_undo_says_it_cannot(
    vision: FakeLlama, tmp_path: Path, pipe_home: Path
) -> None:
    folder, sidecar = album(tmp_path)
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    assert r.returncode == 0, r.stderr
    nothing = run_pipe("prune")  # the newest 10 runs are kept
    assert nothing.returncode == 0 and "nothing to prune" in nothing.stderr
    r = run_pipe("prune", "--all")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(f": {size_text(len(DARKTABLE))} freed; they can no longer be undone\n")
    assert kept(pipe_home) == set()
    assert "replaced files kept" not in run_pipe("runs").stdout
    r = run_pipe("undo")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "cannot be undone: the bytes it replaced were pruned" in r.stderr
    assert sidecar.read_text() != DARKTABLE


def make_photos(folder: Path, n: int) -> dict[Path, bytes]:
    """Small distinct JPEGs, each with a darktable sidecar of its own; the sidecars' bytes."""
    folder.mkdir()
    rng = random.Random(18)
    sidecars = {}
    for i in range(n):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        Image.new("RGB", (32, 24), colour).save(folder / f"IMG_{i:03}.jpg", quality=80)
        sidecar = folder / f"IMG_{i:03}.jpg.xmp"
        sidecar.write_text(DARKTABLE.replace("DSCN0010", f"IMG_{i:03}"))
        sidecars[sidecar] = sidecar.read_bytes()
    return sidecars


def count(db: Path, state: str) -> int:
    """Replacements in `state` by the newest run (0 while the run is making the database)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM replaced WHERE state = ?"
                " AND run_id = (SELECT MAX(id) FROM runs)",
                (state,),
            ).fetchone()[0]
    except sqlite3.OperationalError:  # no table yet
        return 0


def test_sigkill_at_random_points_leaves_old_or_new_and_undo_restores(
    tmp_path: Path, pipe_home: Path
) -> None:
    """Runs writing 40 sidecars, each killed once a random number of them is journaled as
    applied (half of them while the next is planned): every sidecar is its old bytes or
    pipe's at every instant, undo settles the journal, leaves no temporary file and puts
    every sidecar back byte for byte."""
    folder = tmp_path / "album"
    old = make_photos(folder, 40)
    db = pipe_home / "pipe.db"
    rng = random.Random(20261203)
    slow = [sys.executable, "-m", "tests.fakes.pausing_cli", "0.003"]
    settled_runs = 0
    with FakeLlama(vision=True, slots=4) as server:
        args = ("run", "describe-images", str(folder), "--backend", server.url, "-q")
        r = run_pipe(*args, "--write", "xmp", "--dry-run")  # answers cached: runs only write
        assert r.returncode == 0, r.stderr
        new: dict[Path, bytes] = {}
        for i in range(8):
            proc = subprocess.Popen(
                [*slow, *args, "--write", "xmp"],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            k = rng.randrange(0, 30)
            inside = i % 2 == 0  # half the kills land between planned and applied

            def due(k: int = k, proc: subprocess.Popen = proc, inside: bool = inside) -> bool:
                if proc.poll() is not None:
                    return True
                return count(db, "applied") > k and (not inside or count(db, "planned") > 0)

            wait_for(due, what=f"{k + 1} sidecars replaced")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            settled_runs += count(db, "planned") > 0
            for sidecar, before in old.items():
                now = sidecar.read_bytes()
                if now != before:  # pipe's: the same bytes whichever run wrote them
                    assert properties(now)["xmp:Rating"] == "3"
                    assert new.setdefault(sidecar, now) == now
            r = run_pipe("undo")
            assert r.returncode == 0, r.stderr
            assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
            assert all(p.read_bytes() == before for p, before in old.items())
    # The kills meant to land inside a replacement did (each waits for a planned row, so
    # only a machine stalled for the ~15 ms a replacement takes could miss).
    assert settled_runs >= 3, settled_runs
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM replaced GROUP BY state"))
    assert "planned" not in states and states.get("undone", 0) >= 8
    digests = {hashlib.sha256(b).hexdigest() for b in old.values()}
    assert kept(pipe_home) <= digests


def test_the_next_run_settles_a_replacement_a_kill_left(tmp_path: Path, pipe_home: Path) -> None:
    folder = tmp_path / "album"
    old = make_photos(folder, 12)
    db = pipe_home / "pipe.db"
    with FakeLlama(vision=True, slots=4) as server:
        args = ("run", "describe-images", str(folder), "--backend", server.url, "--write", "xmp")
        slow = [sys.executable, "-m", "tests.fakes.pausing_cli", "0.05"]
        proc = subprocess.Popen(
            [*slow, *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: count(db, "planned") > 0, what="a replacement planned")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        r = run_pipe(*args, "-v")
        assert r.returncode == 0, r.stderr
    assert "before the interruption" in r.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM replaced WHERE state = 'planned'").fetchone() == (
            0,
        )
    assert all(p.read_bytes() != before for p, before in old.items())  # every one written
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_lightroom_naming_from_a_flag_the_environment_or_config(
    vision: FakeLlama, tmp_path: Path, pipe_home: Path, how: str
) -> None:
    folder, _ = album(tmp_path)
    run = ["run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp"]
    env = {}
    if how == "flag":
        run += ["--xmp-sidecar", "photo.xmp"]
    elif how == "env":
        env["PIPE_XMP_SIDECAR"] = "photo.xmp"
    else:
        pipe_home.mkdir(parents=True, exist_ok=True)
        (pipe_home / "config.toml").write_text('xmp_sidecar = "photo.xmp"\n')
    r = run_pipe(*run, env=env)
    assert r.returncode == 0, r.stderr
    lightroom = folder / f"{PHOTO.stem}.xmp"
    assert "<dc:description>" in lightroom.read_text()


def test_a_sidecar_naming_pipe_does_not_know_is_one_line_exit_2(
    vision: FakeLlama, tmp_path: Path, pipe_home: Path
) -> None:
    folder, _ = album(tmp_path)
    pipe_home.mkdir(parents=True, exist_ok=True)
    (pipe_home / "config.toml").write_text('xmp_sidecar = "photo.XMP"\n')
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "xmp_sidecar" in r.stderr and '"photo.jpg.xmp" (darktable, digiKam)' in r.stderr


TAGS = """description = "Keywords for photos (a test recipe)"
inputs = ["*.jpg"]

[ask]
kind = "vision"
prompt = "List keywords for this photo."

[then]
action = "xmp"
field = "keywords"
hierarchy = "pipe"
"""


def test_two_recipes_writing_one_sidecar_at_once_both_land(tmp_path: Path, pipe_home: Path) -> None:
    """A caption run and a keywords run over the same photos at the same time, one from each
    end, so they meet on the same sidecars: each ends with both (the runs take turns on
    pipe's lock), the user's fields kept."""
    folder = tmp_path / "album"
    make_photos(folder, 16)
    recipe = tmp_path / "tags.toml"
    recipe.write_text(TAGS)
    slow = [sys.executable, "-m", "tests.fakes.pausing_cli", "0.01"]
    backwards = sorted((str(p) for p in folder.glob("*.jpg")), reverse=True)
    with (
        FakeLlama(vision=True, slots=4) as captions,
        FakeLlama(vision=True, slots=4, answer=lambda _: "dog, beach") as tags,
    ):
        describe = ["run", "describe-images", str(folder), "--backend", captions.url]
        both = [
            subprocess.Popen([*slow, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
            for args in (
                [*describe, "--write", "xmp"],
                ["run", str(recipe), *backwards, "--backend", tags.url],
            )
        ]  # fmt: skip
        errors = [proc.communicate(timeout=300)[1] for proc in both]
    assert [proc.returncode for proc in both] == [0, 0], errors
    for sidecar in folder.glob("*.xmp"):
        found = properties(sidecar.read_bytes())
        assert found["dc:description"]["x-default"], sidecar
        assert found["dc:subject"] == ["holiday", "darktable|format|nef", "dog", "beach"]
        assert "pipe|dog" in found["lr:hierarchicalSubject"]
        assert found["xmp:Rating"] == "3" and len(found["darktable:history"]) == 6


def test_show_lists_the_sidecar_pipe_replaced_for_a_photo(
    vision: FakeLlama, tmp_path: Path
) -> None:
    """`pipe show photo.jpg` names the sidecar pipe merged for it, and after `pipe undo`
    that it was undone; the sidecar's own name finds the same."""
    folder, sidecar = album(tmp_path)
    photo = folder / PHOTO.name
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    assert r.returncode == 0, r.stderr
    shown = run_pipe("show", str(photo))
    assert shown.returncode == 0, shown.stderr
    lines = [x for x in shown.stdout.splitlines() if "  replaced  " in x]
    assert len(lines) == 1 and lines[0].endswith(f"replaced  {sidecar}  (xmp, written)")
    assert run_pipe("undo").returncode == 0
    shown = run_pipe("show", str(photo), "--json")
    events = [json.loads(x) for x in shown.stdout.splitlines()]
    replaced = [e for e in events if e["event"] == "replaced"]
    assert [(e["path"], e["kind"], e["state"]) for e in replaced] == [
        (str(sidecar), "xmp", "undone")
    ]
    assert any(e["event"] == "item" for e in events)
