"""End to end: the files pipe writes (sidecars, XMP, pictures, every contact-sheet page) never
replace a file whose bytes are not the ones pipe wrote, and get the user's umask."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, pipe_cmd, run_pipe
from tests.fakes.llama import FakeLlama
from tests.fakes.sd import SMALL, FakeSd, draws

PHOTO = ROOT / "samples" / "photos" / "DSCN0010.jpg"


def draw_lines(sd: FakeSd, out: Path, sheet: Path, lines: list[str], *args: str) -> Any:
    prompts = "".join(f"{line}\n" for line in lines).encode()
    return run_pipe(
        "run", "draw", "--lines", "--sd-backend", sd.url, "--out", str(out),
        "--contact-sheet", str(sheet), *SMALL, *args, input=prompts,
    )  # fmt: skip


def run_states(pipe_home: Path) -> list[str]:
    with sqlite3.connect(pipe_home / "pipe.db") as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY id")]


def one_line_about(stderr: str, path: Path) -> str:
    """The one stderr line that names `path`; and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if path.name in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_page_two_of_a_contact_sheet_never_replaces_a_users_file(
    sd: FakeSd, tmp_path: Path, pipe_home: Path
) -> None:
    out, sheet = tmp_path / "pictures", tmp_path / "cs.jpg"
    users = tmp_path / "cs-2.jpg"
    users.write_bytes(b"USER\n")
    foxes = [f"a fox {i}" for i in range(1, 102)]  # 101 pictures: two pages of 10 x 10
    r = draw_lines(sd, out, sheet, foxes)
    assert r.returncode == 1, r.stderr
    assert users.read_bytes() == b"USER\n"
    assert "not written by pipe" in one_line_about(r.stderr, users)
    assert not sheet.exists()  # a sheet is all its pages or none
    assert len(list(out.glob("*.png"))) == 101  # the pictures themselves are kept
    assert run_states(pipe_home) == ["failed"]
    # Every item was recorded: a re-run draws nothing again.
    drawn = draws(sd)
    r = draw_lines(sd, out, sheet, foxes)
    assert r.returncode == 1 and draws(sd) == drawn
    assert users.read_bytes() == b"USER\n"
    # Once the user moves their file away, both pages are written.
    users.unlink()
    r = draw_lines(sd, out, sheet, foxes)
    assert r.returncode == 0, r.stderr
    assert sheet.read_bytes()[:2] == users.read_bytes()[:2] == b"\xff\xd8"


def test_a_sheet_the_user_replaced_after_a_run_is_not_overwritten(
    sd: FakeSd, tmp_path: Path, pipe_home: Path
) -> None:
    out, sheet = tmp_path / "pictures", tmp_path / "cs.jpg"
    birds = ["a heron", "a wren", "a crow"]
    assert draw_lines(sd, out, sheet, birds).returncode == 0
    assert sheet.read_bytes()[:2] == b"\xff\xd8"
    r = draw_lines(sd, out, sheet, [*birds, "an owl"])  # pipe's own sheet: replaced
    assert r.returncode == 0, r.stderr
    shutil.copy(PHOTO, sheet)  # the user puts their own picture there
    mine = sheet.read_bytes()
    drawn = draws(sd)
    r = draw_lines(sd, out, sheet, [*birds, "a gull"])
    assert r.returncode == 2  # known before drawing anything
    assert sheet.read_bytes() == mine and draws(sd) == drawn
    assert "changed since pipe wrote it" in one_line_about(r.stderr, sheet)
    assert run_states(pipe_home) == ["done", "done"]


def test_contact_sheet_naming_a_users_file_is_refused_before_drawing(
    sd: FakeSd, tmp_path: Path, pipe_home: Path
) -> None:
    out, sheet = tmp_path / "pictures", tmp_path / "holiday.jpg"
    shutil.copy(PHOTO, sheet)
    r = draw_lines(sd, out, sheet, ["a heron", "a wren"])
    assert r.returncode == 2
    assert sheet.read_bytes() == PHOTO.read_bytes()
    assert "not written by pipe" in one_line_about(r.stderr, sheet)
    assert draws(sd) == 0 and "running" not in run_states(pipe_home)


def test_an_edited_sidecar_is_never_replaced(llama: FakeLlama, notes: Path) -> None:
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    assert r.returncode == 0, r.stderr
    sidecars = sorted(notes.glob("*.txt"))
    assert len(sidecars) == 3
    sidecars[1].write_text("my own notes\n")
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar", "--redo"
    )
    assert r.returncode == 1
    assert sidecars[1].read_text() == "my own notes\n"
    assert "changed since pipe wrote it" in one_line_about(r.stderr, sidecars[1])


def test_a_fifo_or_link_in_the_way_is_refused_without_reading_it(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    os.mkfifo(notes / "note1.md.summary.txt")  # reading it would wait forever
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("someone's file\n")
    (notes / "note2.md.summary.txt").symlink_to(theirs)
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar",
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.count("not a file pipe wrote") == 2 and "Traceback" not in r.stderr
    assert theirs.read_text() == "someone's file\n"
    assert (notes / "note2.md.summary.txt").is_symlink()
    assert (notes / "note3.md.summary.txt").read_text().startswith("Summary ")


def test_an_edited_xmp_keeps_the_users_edits(tmp_path: Path) -> None:
    """A sidecar the user edited after pipe wrote it is merged into, never clobbered: pipe
    sets its own field and every edit of the user's stays."""
    folder = tmp_path / "album"
    folder.mkdir()
    shutil.copy(PHOTO, folder / PHOTO.name)
    xmp = folder / f"{PHOTO.name}.xmp"
    with FakeLlama(vision=True) as vision:
        run = ("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
        assert run_pipe(*run).returncode == 0
        assert "<dc:description>" in xmp.read_text()
        rated = ' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"'
        xmp.write_text(xmp.read_text().replace(" xmlns:dc=", rated + " xmlns:dc=", 1))
        edited = xmp.read_bytes()
        r = run_pipe(*run, "--redo")
        assert r.returncode == 0, r.stderr
        assert xmp.read_bytes() == edited  # pipe's caption is already there: nothing to write
        xmp.write_text(xmp.read_text().replace('x-default">', 'x-default">Mine: ', 1))
        r = run_pipe(*run, "--redo")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    text = xmp.read_text()
    assert 'xmp:Rating="4"' in text and "Mine: " not in text  # the caption is pipe's again


def test_a_picture_the_user_replaced_is_never_overwritten(
    llama: FakeLlama, sd: FakeSd, notes: Path
) -> None:
    run = ("run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url, *SMALL)
    assert run_pipe(*run).returncode == 0
    picture = notes / "note2.md.png"
    shutil.copy(PHOTO, picture)
    r = run_pipe(*run, "--set", "steps.draw.cfg_scale=5")  # new settings: every picture again
    assert r.returncode == 1
    assert picture.read_bytes() == PHOTO.read_bytes()
    assert "changed since pipe wrote it" in r.stderr and "Traceback" not in r.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_new_outputs_get_the_users_umask(
    umask: int, llama: FakeLlama, sd: FakeSd, notes: Path, tmp_path: Path
) -> None:
    def pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(pipe_cmd(*args), cwd=ROOT, capture_output=True, umask=umask)

    r = pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    assert r.returncode == 0, r.stderr
    sheet = tmp_path / "sheet.jpg"
    r = pipe(
        "run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url,
        "--contact-sheet", str(sheet), *SMALL,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    written = [*notes.glob("*.txt"), *notes.glob("*.png"), sheet]
    assert len(written) == 7
    assert {mode(p) for p in written} == {0o666 & ~umask}


def test_a_replaced_output_keeps_its_permissions(llama: FakeLlama, notes: Path) -> None:
    run = ("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    assert run_pipe(*run).returncode == 0
    sidecar = notes / "note1.md.summary.txt"
    before = sidecar.read_text()
    sidecar.chmod(0o640)
    (notes / "note1.md").write_text("Something else entirely happened.\n")
    assert run_pipe(*run).returncode == 0
    assert sidecar.read_text() != before  # pipe replaced its own file
    assert mode(sidecar) == 0o640


def test_out_where_nothing_would_go_is_a_usage_error(llama: FakeLlama, notes: Path) -> None:
    """--out is for pictures: with a recipe that writes none it is said, not ignored, before
    any server is asked or any folder made."""
    out = notes.parent / "out"
    for recipe, write in (
        ("summarize-text", ()),
        ("summarize-text", ("--write", "sidecar")),
        ("describe-images", ("--write", "embedded")),
    ):
        r = run_pipe("run", recipe, str(notes), "--backend", llama.url, "--out", str(out), *write)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "leave out --out" in r.stderr
    assert llama.requests == [] and not out.exists()
    assert not list(notes.glob("*.txt"))
