"""End to end: describe and rename photos with the real CLI against fake vision servers."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, pipe_cmd, run_pipe, wait_for
from tests.fakes.llama import MEDIA_MARKER, FakeKobold, FakeLlama
from tests.fakes.photos import LARGE_THUMBNAIL_FULL_HD, save_with_frames

PHOTOS = ROOT / "samples" / "photos"
CAMERAS = ["Canon_PowerShot_S40.jpg", "DSCN0010.jpg", "Kodak_CX7530.jpg", "Pentax_K10D.jpg"]


def digests(folder: Path) -> Counter[str]:
    """Content of every file in a folder, as a multiset of hashes (names ignored)."""
    return Counter(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    )


def album(tmp_path: Path, names: list[str] = CAMERAS) -> Path:
    folder = tmp_path / "album"
    folder.mkdir()
    for name in names:
        shutil.copy2(PHOTOS / name, folder / name)
    return folder


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def vision() -> FakeLlama:
    with FakeLlama(vision=True, slots=2) as server:
        yield server


def test_describe_sends_a_shrunk_jpeg_with_the_media_marker(
    vision: FakeLlama, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    Image.new("RGB", (4000, 3000), (10, 120, 200)).save(big / "wide.jpg", quality=90)
    r = run_pipe("run", "describe-images", str(big), "--backend", vision.url, "--json")
    assert r.returncode == 0, r.stderr
    body = next(b for p, b in vision.requests if p == "/completion")
    prompt = body["prompt"]
    assert (
        MEDIA_MARKER in prompt["prompt_string"] and "<start_of_turn>user" in prompt["prompt_string"]
    )
    image = Image.open(io.BytesIO(base64.b64decode(prompt["multimodal_data"][0])))
    assert image.format == "JPEG" and max(image.size) == 1024 and image.size == (1024, 768)
    assert records(r.stdout)[0]["status"] == "done"


def test_describe_writes_xmp_and_text_sidecars(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:2])
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    assert r.returncode == 0, r.stderr
    xmp = (folder / "DSCN0010.jpg.xmp").read_text()
    assert "<dc:description>" in xmp and 'xml:lang="x-default"' in xmp
    r = run_pipe(
        "run", "describe-images", str(folder), "--backend", vision.url, "--write", "sidecar"
    )
    assert (folder / "DSCN0010.jpg.txt").read_text().strip() in xmp
    assert vision.generate_calls == 2  # the second run answered from the cache


def test_koboldcpp_gets_bare_base64_images(tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:1])
    with FakeKobold(vision=True) as server:
        r = run_pipe("run", "describe-images", str(folder), "--backend", server.url)
        assert r.returncode == 0, r.stderr
        body = next(b for p, b in server.requests if p == "/api/v1/generate")
        assert body["images"][0].startswith("/9j/") and server.images_seen == 1


@pytest.mark.parametrize("version", ["0.8.1", "0.8.2"])
def test_llamafile_sees_images_and_a_llamafile_without_projector_is_refused(
    version: str, tmp_path: Path
) -> None:
    """llamafile's server before 0.8.2 counts no prompt tokens for an image request, and one
    started without --mmproj ignores images unread; n_past (tokens_cached) tells them apart."""
    folder = album(tmp_path, CAMERAS[:2])
    with FakeLlama(llamafile=version, vision=True) as server:
        r = run_pipe("run", "describe-images", str(folder), "--backend", server.url, "--json")
        assert r.returncode == 0, r.stderr
        body = [b for p, b in server.requests if p == "/completion"][-1]
        assert body["image_data"][0]["id"] == 10 and "[img-10]" in body["prompt"]
        assert "SmolLM" not in body["prompt"] and "<start_of_turn>" in body["prompt"]  # gemma
        assert [rec["status"] for rec in records(r.stdout)] == ["done", "done"]
        assert server.images_seen == 2 + 1  # two photos and the check's test image
    with FakeLlama(llamafile=version, vision=False, model="other.gguf") as server:
        r = run_pipe("run", "describe-images", str(folder), "--backend", server.url)
        assert r.returncode == 3, r.stderr
        assert "ignores images" in r.stderr and "--mmproj" in r.stderr
        assert r.stdout == "" and "Traceback" not in r.stderr
        assert server.generate_calls == 2  # only the check: no photo was described


def test_a_finished_folder_asks_a_llamafile_nothing(tmp_path: Path) -> None:
    """The vision check runs before the first photo that needs the model, not before every
    run: the real run after a dry run and a cron re-run make no model call at all."""
    folder = album(tmp_path)
    with FakeLlama(llamafile="0.8.1", vision=True) as server:
        args = ("run", "rename-images", str(folder), "--backend", server.url)
        r = run_pipe(*args, "--dry-run")
        assert r.returncode == 0, r.stderr
        assert server.generate_calls == len(CAMERAS) + 2  # the photos and the check
        for _ in range(2):  # apply, then a re-run of the finished folder
            before = len(server.requests)
            r = run_pipe(*args)
            assert r.returncode == 0, r.stderr
            paths = [p for p, _ in server.requests[before:]]
            assert "/completion" not in paths and "/tokenize" not in paths, paths
    assert not set(CAMERAS) & {p.name for p in folder.iterdir()}  # all renamed


@pytest.mark.parametrize("server", [FakeLlama, FakeKobold])
def test_text_only_server_is_refused_before_any_photo(server: type, tmp_path: Path) -> None:
    folder = album(tmp_path)
    with server() as fake:
        r = run_pipe("run", "rename-images", str(folder), "--backend", fake.url)
        assert r.returncode == 3
        assert "--mmproj" in r.stderr and r.stderr.count("\n") <= 3
        assert fake.generate_calls == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(CAMERAS)


def test_dry_run_then_apply_then_undo(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing changed
    plan = [line.split(" -> ") for line in r.stdout.splitlines()]
    assert len(plan) == 4 and "To apply: pipe run rename-images" in r.stderr
    calls = vision.generate_calls
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url)
    assert r.returncode == 0, r.stderr
    assert vision.generate_calls == calls  # the preview's captions are reused
    assert [line.split(" -> ") for line in r.stdout.splitlines()] == plan
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(Path(new).name for _, new in plan)
    assert "2008-10-22_" in " ".join(names)  # DSCN0010's DateTimeOriginal
    assert digests(folder) == Counter(hashlib.sha256(b).hexdigest() for b in before.values())
    # A second run renames nothing again.
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url, "-v")
    assert r.stdout == "" and "4 skipped" in r.stderr
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "CON",
    "nul.txt",
    "x" * 400,
    "🌅🌊",
    "",
    "a\x00b",
    "first line\nsecond line",
    "same name",
    "-rf --no-preserve-root",
    ".hidden",
]


@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answers_never_lose_or_move_a_file(
    answer: str, tmp_path: Path, pipe_home: Path
) -> None:
    folder = album(tmp_path)
    (folder / "same-name.jpg").write_bytes(b"not a photo of ours, keep me")
    before = digests(folder)
    outside = {p for p in tmp_path.rglob("*") if folder not in p.parents}
    with FakeLlama(vision=True, answer=lambda _: answer) as server:
        r = run_pipe(
            "run",
            "rename-images",
            str(folder),
            "--backend",
            server.url,
            "--json",
            "--retries",
            "0",
            "--set",
            "then.name={answer|slug}{ext}",
        )
    assert r.returncode in (0, 1), r.stderr
    assert digests(folder) == before  # every file still there exactly once
    assert (folder / "same-name.jpg").read_bytes() == b"not a photo of ours, keep me"
    for path in folder.iterdir():
        assert path.parent == folder and not path.name.startswith((".", "-"))
        assert len(path.name.encode()) <= 255 and path.name.split(".")[0].upper() != "CON"
    # Nothing was created or moved anywhere but inside the folder (pipe's home aside).
    after = {p for p in tmp_path.rglob("*") if folder not in p.parents}
    assert {p for p in after - outside if "pipe-home" not in p.parts} == set()
    with sqlite3.connect(pipe_home / "pipe.db") as db:
        targets = [Path(row[0]) for row in db.execute("SELECT new_path FROM renames")]
    assert all(t.parent == folder for t in targets), targets  # every plan stayed inside
    if answer.strip("🌅🌊\x00 ") == "":
        # Kept its name and failed (a re-run asks again).
        assert r.returncode == 1 and ("nothing usable" in r.stderr or "empty answer" in r.stderr)
        assert sorted(p.name for p in folder.iterdir()) == sorted([*CAMERAS, "same-name.jpg"])


def test_an_unusable_answer_is_asked_again_on_the_next_run(tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:1])
    with FakeLlama(vision=True, answer=lambda _: "🌅🌊") as server:
        r = run_pipe("run", "rename-images", str(folder), "--backend", server.url)
        assert r.returncode == 1 and "nothing usable" in r.stderr
        r = run_pipe("run", "rename-images", str(folder), "--backend", server.url)
        assert r.returncode == 1 and server.generate_calls == 2  # asked again, not cached
    assert [p.name for p in folder.iterdir()] == CAMERAS[:1]


def test_the_same_answer_for_every_photo_gets_numbered(tmp_path: Path) -> None:
    folder = album(tmp_path)
    with FakeLlama(vision=True, answer=lambda _: "boats in the harbour") as server:
        r = run_pipe(
            "run",
            "rename-images",
            str(folder),
            "--backend",
            server.url,
            "--set",
            "then.name={answer|slug}{ext}",
        )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "boats-in-the-harbour-2.jpg",
        "boats-in-the-harbour-3.jpg",
        "boats-in-the-harbour-4.jpg",
        "boats-in-the-harbour.jpg",
    ]


def test_companions_move_with_their_photo(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:1])
    (folder / "Canon_PowerShot_S40.CR2").write_bytes(b"raw")
    (folder / "Canon_PowerShot_S40.jpg.txt").write_text("my notes")
    r = run_pipe(
        "run",
        "rename-images",
        str(folder),
        "--backend",
        vision.url,
        "--set",
        "then.name={answer|slug}{ext}",
    )
    assert r.returncode == 0, r.stderr
    stems = {p.name.split(".")[0] for p in folder.iterdir()}
    assert len(stems) == 1 and "Canon" not in stems.pop()
    assert sorted(p.suffix for p in folder.iterdir()) == [".CR2", ".jpg", ".txt"]


def test_bad_images_are_per_item_errors_and_a_png_gets_its_real_extension(
    vision: FakeLlama, tmp_path: Path
) -> None:
    folder = album(tmp_path, CAMERAS[:1])
    data = (PHOTOS / "DSCN0010.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "garbage.jpg").write_bytes(os.urandom(5000))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "folder.jpg").mkdir()
    Image.new("RGB", (64, 48), (0, 200, 0)).save(folder / "really-png.jpg", format="PNG")
    r = run_pipe(
        "run",
        "rename-images",
        str(folder),
        "--backend",
        vision.url,
        "--json",
        "--set",
        "then.name={answer|slug}{ext}",
    )
    assert r.returncode == 1
    by_name = {Path(x["path"]).name: x for x in records(r.stdout)}
    assert by_name["garbage.jpg"]["status"] == "failed"
    assert by_name["empty.jpg"]["status"] == "failed" and "empty" in by_name["empty.jpg"]["error"]
    assert by_name["truncated.jpg"]["status"] == "failed"
    assert "truncated" in by_name["truncated.jpg"]["error"]
    assert (folder / "truncated.jpg").exists()  # a failed photo keeps its name
    assert by_name["really-png.jpg"]["new_path"].endswith(".png")
    assert (folder / "folder.jpg").is_dir()
    assert "Traceback" not in r.stderr


def test_undo_refuses_a_changed_file_and_a_taken_name(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:2])
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url, "--json")
    renamed = [Path(x["new_path"]) for x in records(r.stdout)]
    renamed[0].write_bytes(renamed[0].read_bytes() + b"edited")  # changed since
    (folder / CAMERAS[1]).write_bytes(b"someone else took the old name")
    r = run_pipe("undo")
    assert r.returncode == 1
    assert "was changed after the rename" in r.stderr and "is taken by another file" in r.stderr
    assert renamed[0].exists() and renamed[1].exists()


def test_undo_of_an_unknown_run_and_undo_again(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:2])
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url)
    assert r.returncode == 0, r.stderr
    r = run_pipe("undo", "9999")
    assert r.returncode == 2 and r.stderr == "pipe: error: no run 9999\n", r.stderr
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    run_id = r.stderr.splitlines()[-1].split()[2].rstrip(":")  # "pipe: run N: 2 renames …"
    for again in (run_pipe("undo"), run_pipe("undo", run_id)):
        assert again.returncode == 0 and again.stdout == "", again.stderr
        assert again.stderr == f"pipe: nothing to undo: run {run_id} is already undone\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(CAMERAS[:2])


def make_unique_photos(folder: Path, n: int) -> None:
    """Small JPEGs with different bytes (solid colours alone can quantize to equal files)."""
    folder.mkdir()
    rng = random.Random(7)
    for i in range(n):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        image = Image.new("RGB", (48, 32), colour)
        for bit in range(12):  # the index, drawn as black and white squares
            shade = 255 if i >> bit & 1 else 0
            image.paste((shade, shade, shade), (bit * 4, 0, bit * 4 + 4, 4))
        image.save(folder / f"IMG_{i:04}.jpg", quality=80)


def undo_everything() -> None:
    for _ in range(50):  # every run that renamed something, newest first
        r = run_pipe("undo")
        if "nothing to undo" in r.stderr:
            return
        assert r.returncode == 0, r.stderr
    raise AssertionError("undo never finished")


def journal_count(db: Path, state: str) -> int:
    """Renames in `state` journaled by the newest run (0 before it has journaled any)."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM renames WHERE state = ? AND run_id = (SELECT MAX(id) FROM runs)",
            (state,),
        ).fetchone()[0]


def test_sigkill_at_random_points_never_loses_a_file(tmp_path: Path, pipe_home: Path) -> None:
    """20 rename runs of 200 photos, each killed once a random number of its renames is
    journaled as applied: no file is ever lost or duplicated for good; after each kill, undo
    puts every name back; a final run completes cleanly."""
    folder = tmp_path / "album"
    make_unique_photos(folder, 200)
    originals = digests(folder)
    assert len(originals) == 200
    names = sorted(p.name for p in folder.iterdir())
    db = pipe_home / "pipe.db"
    rng = random.Random(20261125)
    # Widens each step of the protocol (journaled, linked, unlinked, marked) so that a kill
    # also lands between a link and its unlink now and then.
    slow = [sys.executable, "-m", "tests.fakes.pausing_cli", "0.002"]
    killed_mid_apply = 0
    with FakeLlama(vision=True, slots=4) as server:
        args = (
            "run",
            "rename-images",
            str(folder),
            "--backend",
            server.url,
            "-q",
            "--set",
            "then.name={answer|slug}{ext}",
        )
        r = run_pipe(*args, "--dry-run")  # captions cached: the runs below only rename
        assert r.returncode == 0, r.stderr
        for _ in range(20):
            proc = subprocess.Popen(
                [*slow, *args],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            k = rng.randrange(0, 150)
            wait_for(
                lambda k=k, proc=proc: journal_count(db, "applied") > k or proc.poll() is not None,
                what=f"{k + 1} renames applied",
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_mid_apply += journal_count(db, "planned") > 0
            present = digests(folder)
            assert set(present) == set(originals)  # nothing lost at any instant
            # At most one photo has a second name: killed between its link and its unlink.
            assert sum(present.values()) - sum(originals.values()) <= 1
            undo_everything()  # reconciles the journal, then puts every name back
            assert sorted(p.name for p in folder.iterdir()) == names
            assert digests(folder) == originals
        r = run_pipe(*args)
        assert r.returncode == 0, r.stderr
    assert digests(folder) == originals
    assert all(not p.name.startswith("IMG_") for p in folder.iterdir())
    # The kills really landed inside the apply phase (each waits for a journal row, so only
    # a machine stalled for the ~0.3 s the remaining renames take could miss).
    assert killed_mid_apply >= 15, killed_mid_apply
    with sqlite3.connect(db) as conn:
        settled = conn.execute(
            "SELECT COUNT(DISTINCT run_id) FROM renames WHERE reason LIKE '%interruption%'"
        ).fetchone()[0]
    assert settled == killed_mid_apply  # each was reconciled from the disk
    undo_everything()
    assert sorted(p.name for p in folder.iterdir()) == names


def test_dry_run_of_sidecars_writes_nothing(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, CAMERAS[:2])
    before = sorted(p.name for p in folder.iterdir())
    r = run_pipe(
        "run",
        "describe-images",
        str(folder),
        "--backend",
        vision.url,
        "--write",
        "xmp",
        "--dry-run",
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
    assert r.stdout.count(".jpg.xmp") == 2 and "To apply" in r.stderr
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--write", "xmp")
    assert len(list(folder.glob("*.xmp"))) == 2 and vision.generate_calls == 2


def test_undo_works_from_another_folder_after_a_relative_run(
    vision: FakeLlama, tmp_path: Path
) -> None:
    folder = album(tmp_path, CAMERAS[:2])
    before = sorted(p.name for p in folder.iterdir())
    subprocess.run(
        pipe_cmd("run", "rename-images", "album", "--backend", vision.url),
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in folder.iterdir()) != before
    r = run_pipe("undo")  # from the repository, not from tmp_path
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_camera_jpeg_uploads_its_preview_and_keeps_its_bytes(
    vision: FakeLlama, tmp_path: Path
) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    photo = save_with_frames(
        folder / "DSC00042.JPG",
        Image.new("RGB", (3000, 2000), (200, 0, 0)),  # red photo, blue preview
        [(Image.new("RGB", (1536, 1024), (0, 0, 200)), LARGE_THUMBNAIL_FULL_HD)],
    )
    data = photo.read_bytes()
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url)
    assert r.returncode == 0, r.stderr
    body = next(b for p, b in vision.requests if p == "/completion")
    image = Image.open(io.BytesIO(base64.b64decode(body["prompt"]["multimodal_data"][0])))
    assert image.size == (1024, 683) and image.getpixel((500, 300))[2] > 150  # the preview
    [renamed] = list(folder.iterdir())
    assert renamed.suffix.lower() == ".jpg" and renamed.read_bytes() == data


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses non-UTF-8 names")
def test_a_name_that_is_not_utf8_is_renamed_and_restored(vision: FakeLlama, tmp_path: Path) -> None:
    folder = tmp_path / "old-disk"
    folder.mkdir()
    latin1 = os.path.join(os.fsencode(folder), b"caf\xe9 \xe0 Paris.jpg")  # not UTF-8
    data = (PHOTOS / "DSCN0010.jpg").read_bytes()
    with open(latin1, "wb") as f:
        f.write(data)
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url)
    assert r.returncode == 0, r.stderr
    [renamed] = os.listdir(os.fsencode(folder))
    assert renamed.decode("utf-8").startswith("2008-10-22_")  # a clean new name
    assert (folder / renamed.decode()).read_bytes() == data
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    assert os.listdir(os.fsencode(folder)) == [os.path.basename(latin1)]
    with open(latin1, "rb") as f:
        assert f.read() == data


def test_show_follows_a_photo_across_its_renames(vision: FakeLlama, tmp_path: Path) -> None:
    folder = album(tmp_path, ["DSCN0010.jpg"])
    old = folder / "DSCN0010.jpg"
    r = run_pipe("run", "rename-images", str(folder), "--backend", vision.url, "--json")
    assert r.returncode == 0, r.stderr
    new = Path(records(r.stdout)[0]["new_path"])
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    for name in (new, old):  # either name finds the whole story
        r = run_pipe("show", str(name))
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        events = [line.split("  ")[2] for line in lines if line.startswith("run ")]
        assert events == ["rename-images", "renamed", "undone"], r.stdout
        assert f"renamed  {old} -> {new}" in r.stdout and f"undone  {new} -> {old}" in r.stdout
        assert "date: 2008-10-22 16:28:39 (from " in r.stdout  # and where the date came from
        answer = next(line for line in lines if line.strip().startswith("answer: "))
        assert answer.split(": ", 1)[1] and answer.split(": ", 1)[1] in new.name.replace("-", " ")
    r = run_pipe("show", str(new), "--json")
    assert [json.loads(line)["event"] for line in r.stdout.splitlines()] == [
        "item",
        "renamed",
        "undone",
    ]


def test_phone_and_new_formats_are_described_and_others_say_why(
    vision: FakeLlama, tmp_path: Path
) -> None:
    """A default install reads an iPhone's HEIC (a grid of tiles, as phones store it), AVIF
    and JPEG XL; a format pipe cannot read is one line naming it, never 'not an image'."""
    import pillow_heif

    from pipeline.media import formats

    pillow_heif.register_heif_opener()  # only to write the test photos
    formats.register_jxl()
    folder = tmp_path / "phone"
    folder.mkdir()
    photo = Image.effect_noise((2000, 1500), 60).convert("RGB")
    heif = pillow_heif.from_pillow(photo)
    heif.save(folder / "IMG_0001.HEIC", quality=80, tile_size=512)  # a grid, like an iPhone
    photo.save(folder / "b.avif", "AVIF", quality=60)
    photo.save(folder / "c.jxl", "JXL", quality=80)
    (folder / "d.tif").write_bytes(b"8BPS" + bytes(60))  # a Photoshop file named .tif
    r = run_pipe("run", "describe-images", str(folder), "--backend", vision.url, "--json")
    assert r.returncode == 1, r.stderr
    by_name = {Path(x["path"]).name: x for x in records(r.stdout)}
    assert [by_name[n]["status"] for n in ("IMG_0001.HEIC", "b.avif", "c.jxl")] == ["done"] * 3
    assert by_name["d.tif"]["error"].startswith("Photoshop PSD is not supported")
    uploads = [
        Image.open(io.BytesIO(base64.b64decode(b["prompt"]["multimodal_data"][0])))
        for p, b in vision.requests
        if p == "/completion"
    ]
    assert len(uploads) == 3 and {u.size for u in uploads} == {(1024, 768)}
