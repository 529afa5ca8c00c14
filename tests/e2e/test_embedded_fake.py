"""End to end: `--write embedded` through the real CLI against the fake vision server:
captions into the photos themselves (same pixels, read back by other readers), a format
exiv2 cannot write fails alone in one line, a dry run writes nothing, a re-run asks and
writes nothing, and SIGKILLs at random points never leave a broken photo."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bench.embedded import kill_and_undo
from tests.conftest import CORPUS, run_pipe
from tests.fakes.llama import FakeLlama
from tests.media.second_reader import iptc, pixels, xmp_fields


@pytest.fixture
def vision() -> FakeLlama:
    with FakeLlama(vision=True, slots=2) as server:
        yield server


def _album(tmp_path: Path) -> Path:
    folder = tmp_path / "album"
    folder.mkdir()
    shutil.copy(CORPUS / "gps" / "DSCN0029.jpg", folder / "street.jpg")
    shutil.copy(CORPUS / "xmp" / "BlueSquare.jpg", folder / "square.jpg")
    Image.new("RGB", (40, 30), "red").save(folder / "red.gif")
    Image.new("RGB", (40, 30), "blue").save(folder / "blue.png")
    return folder


def _state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_captions_go_into_the_photos_and_the_gif_fails_alone(
    vision: FakeLlama, tmp_path: Path
) -> None:
    folder = _album(tmp_path)
    seen = {p.name: pixels(p) for p in folder.iterdir()}
    before = _state(folder)
    run = ("run", "describe-images", str(folder), "--backend", vision.url, "--write", "embedded")

    dry = run_pipe(*run, "--dry-run")
    assert dry.returncode == 1, dry.stderr  # the GIF fails even in a dry run
    assert f"{folder / 'street.jpg'}: would embed the caption (XMP, IPTC)" in dry.stdout
    assert f"{folder / 'blue.png'}: would embed the caption (XMP)" in dry.stdout
    assert _state(folder) == before

    r = run_pipe(*run)
    assert r.returncode == 1  # one item failed; the others are done
    failed = [line for line in r.stderr.splitlines() if "red.gif" in line]
    assert len(failed) == 1
    assert "embedded: exiv2 cannot write metadata into GIF; use --write xmp" in failed[0]
    assert ", 3 written" in r.stderr  # the three photos pipe rewrote count as written
    assert {p.name: pixels(p) for p in folder.iterdir()} == seen
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)  # no file left beside
    for name in ("street.jpg", "square.jpg", "blue.png"):
        caption = xmp_fields(folder / name)[0]
        assert caption and caption.split()[0] in vision_words(), name
    assert iptc(folder / "street.jpg")[(2, 120)].decode() == xmp_fields(folder / "street.jpg")[0]
    assert xmp_fields(folder / "square.jpg")[1][:2] == ["XMP", "Blue Square"]  # the user's
    assert _state(folder)["red.gif"] == before["red.gif"]

    calls, written = vision.generate_calls, _state(folder)
    again = run_pipe(*run)
    assert again.returncode == 1, again.stderr  # the GIF again
    assert vision.generate_calls == calls  # the photos pipe wrote are finished, not new
    assert "written" not in again.stderr  # and nothing is written again
    assert _state(folder) == written

    undo = run_pipe("undo")
    assert undo.returncode == 0, undo.stderr
    assert "3 files put back as they were, 0 kept" in undo.stderr
    assert _state(folder) == before  # byte for byte


def vision_words() -> set[str]:
    from tests.fakes.llama import WORDS

    return set(WORDS)


def test_sigkills_never_leave_a_broken_photo_and_undo_restores_all(tmp_path: Path) -> None:
    """The embedded-kill bench, smaller: 32 photos of four formats, 6 SIGKILLs."""
    out = kill_and_undo(tmp_path, 32, 6)
    assert out.kills >= 3  # each kill waits for its photo; only a stalled machine misses one
    assert out.changed_pixels == [] and out.missing_captions == []
    assert out.temp_files_left == 0
    assert (out.rerun_asked, out.rerun_replaced) == (0, 0)
    assert out.not_restored == []


def test_a_finished_photo_the_action_cannot_serve_fails_the_run_in_one_line(
    vision: FakeLlama, tmp_path: Path
) -> None:
    """Described by an earlier run (skipped now), the GIF still cannot be written into:
    one line, counted as failed, exit 1; the photos that can be are written."""
    folder = _album(tmp_path)
    first = run_pipe("run", "describe-images", str(folder), "--backend", vision.url)
    assert first.returncode == 0, first.stderr
    calls = vision.generate_calls
    r = run_pipe(
        "run", "describe-images", str(folder), "--backend", vision.url, "--write", "embedded"
    )
    assert vision.generate_calls == calls  # every answer came from the earlier run
    assert r.returncode == 1, r.stderr
    failed = [line for line in r.stderr.splitlines() if "red.gif" in line]
    assert len(failed) == 1 and "cannot write metadata into GIF" in failed[0]
    assert "0 done, 0 from cache, 3 skipped, 1 failed, 3 written" in r.stderr


def test_show_lists_a_photo_rewritten_in_place(vision: FakeLlama, tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    photo = folder / "street.jpg"
    shutil.copy(CORPUS / "gps" / "DSCN0029.jpg", photo)
    run = ("run", "describe-images", str(folder), "--backend", vision.url, "--write", "embedded")
    assert run_pipe(*run).returncode == 0
    shown = run_pipe("show", str(photo))
    assert shown.returncode == 0, shown.stderr
    assert [x.split("  ", 2)[-1] for x in shown.stdout.splitlines() if "  replaced  " in x] == [
        f"replaced  {photo}  (embedded, written)"
    ]
