"""End to end: recipes that draw (thumbnails, restyle-images, draw) through the real CLI,
against a fake text server and a fake koboldcpp image server (tests/fakes/sd.py)."""

from __future__ import annotations

import io
import json
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, pipe_cmd, run_pipe, wait_for
from tests.fakes.llama import FakeLlama, dead_url, default_answer
from tests.fakes.sd import SMALL, FakeSd, draws

SAMPLES = ROOT / "samples" / "photos"
# Pictures that the fake draws at once: the smallest size, one step.


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def thumbnails(
    notes: Path, llama: FakeLlama, sd: FakeSd, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_pipe(
        "run",
        "thumbnails",
        str(notes),
        "--backend",
        llama.url,
        "--sd-backend",
        sd.url,
        *SMALL,
        *args,
    )


def test_dry_run_writes_prompts_and_draws_nothing_then_the_real_run_reuses_them(
    llama: FakeLlama, sd: FakeSd, notes: Path
) -> None:
    r = thumbnails(notes, llama, sd, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert draws(sd) == 0 and not list(notes.glob("*.png"))
    assert r.stdout.count(" -> ") == 3 and "Summary " in r.stdout  # path -> target: prompt
    asked = llama.generate_calls
    assert asked == 3
    r = thumbnails(notes, llama, sd, "--json")
    assert r.returncode == 0, r.stderr
    assert llama.generate_calls == asked  # the prompts came from the dry run
    assert draws(sd) == 3
    for record in records(r.stdout):
        image = record["image"]
        assert image["path"] == record["path"] + ".png" and "answer" not in record
        with Image.open(image["path"]) as im:
            assert im.size == (64, 64) == (image["width"], image["height"])
            parameters = im.info["parameters"]
        assert f"Seed: {image['seed']}, Size: 64x64, Model: random-sd15" in parameters
        assert (
            parameters.startswith("Summary ") and "\nNegative prompt: text, letters" in parameters
        )
    # A re-run asks and draws nothing.
    r = thumbnails(notes, llama, sd, "-v")
    assert (llama.generate_calls, draws(sd)) == (asked, 3) and "3 skipped" in r.stderr


def test_new_drawing_settings_redraw_without_asking_the_text_model(
    llama: FakeLlama, sd: FakeSd, notes: Path
) -> None:
    assert thumbnails(notes, llama, sd).returncode == 0
    first = {p.name: p.read_bytes() for p in notes.glob("*.png")}
    r = thumbnails(notes, llama, sd, "--set", "steps.draw.cfg_scale=5")
    assert r.returncode == 0, r.stderr
    assert llama.generate_calls == 3 and draws(sd) == 6
    assert [b["cfg_scale"] for p, b in sd.requests if p.endswith("txt2img")][-3:] == [5, 5, 5]
    # pipe replaces the pictures it wrote itself.
    assert {p.name for p in notes.glob("*.png")} == set(first)
    assert all(first[p.name] != p.read_bytes() for p in notes.glob("*.png"))


def test_out_folder_and_contact_sheet(
    llama: FakeLlama, sd: FakeSd, notes: Path, tmp_path: Path
) -> None:
    out = tmp_path / "thumbs"
    r = thumbnails(notes, llama, sd, "--out", str(out), "--contact-sheet", str(out / "sheet.jpg"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "note1.md.png",
        "note2.md.png",
        "note3.md.png",
        "sheet.jpg",
    ]
    assert not list(notes.glob("*.png"))
    with Image.open(out / "sheet.jpg") as sheet:
        assert sheet.width >= 3 * 64 and sheet.height > 64
    # The pictures are never inputs of the next run, and a re-run keeps them as they are.
    r = thumbnails(out.parent / "thumbs", llama, sd)
    assert r.returncode == 0 and draws(sd) == 3


def test_a_file_pipe_did_not_write_is_never_replaced(
    llama: FakeLlama, sd: FakeSd, notes: Path
) -> None:
    mine = notes / "note2.md.png"
    mine.write_bytes(b"my own picture")
    r = thumbnails(notes, llama, sd, "--json")
    assert r.returncode == 1
    assert mine.read_bytes() == b"my own picture"
    failed = [x for x in records(r.stdout) if x["status"] == "failed"]
    assert [x["path"] for x in failed] == [str(notes / "note2.md")]
    assert "not written by pipe" in failed[0]["error"]
    assert (notes / "note1.md.png").exists() and (notes / "note3.md.png").exists()


def test_seeds_come_from_the_content_or_are_picked_and_recorded(
    llama: FakeLlama, sd: FakeSd, notes: Path
) -> None:
    shutil.copy(notes / "note1.md", notes / "copy-of-note1.md")
    r = thumbnails(notes, llama, sd, "--json")
    seeds = {Path(x["path"]).name: x["image"]["seed"] for x in records(r.stdout)}
    assert seeds["copy-of-note1.md"] == seeds["note1.md"] != seeds["note2.md"]
    assert draws(sd) == 3  # the copy's picture came from the cache: same prompt, same seed
    r = thumbnails(notes, llama, sd, "--json", "--set", "steps.draw.seed=-1", "--redo")
    sent = [b["seed"] for p, b in sd.requests if p == "/sdapi/v1/txt2img"][-3:]
    recorded = [x["image"]["seed"] for x in records(r.stdout)]
    assert all(0 <= s < 2**31 for s in sent) and set(sent) == set(recorded)


@pytest.mark.parametrize(
    ("failures", "drawn"),
    [
        (["empty"], True),
        (["not_png"], True),
        (["bad_base64"], True),
        (["busy"], True),
        (["damaged_png"], True),
        (["bad_input"], False),
    ],
)
def test_image_server_failures_are_per_item_and_never_saved(
    llama: FakeLlama, notes: Path, failures: list[str], drawn: bool
) -> None:
    (notes / "note2.md").unlink()
    (notes / "note3.md").unlink()
    with FakeSd(failures=failures) as sd:
        r = thumbnails(notes, llama, sd, "--json")
        calls = draws(sd)
    record = records(r.stdout)[0]
    if drawn:  # worth retrying: the next attempt drew it
        assert r.returncode == 0 and record["status"] == "done" and calls == 2
        with Image.open(notes / "note1.md.png") as im:
            im.load()
    else:  # the server refused it for good: one request, an error, no file
        assert r.returncode == 1 and record["status"] == "failed" and calls == 1
        assert "bad_input" in record["error"] or "Error parsing input" in record["error"]
        assert not (notes / "note1.md.png").exists()


def test_a_server_without_an_image_model_stops_before_the_first_file(
    llama: FakeLlama, notes: Path
) -> None:
    with FakeSd(model=None) as sd:
        r = thumbnails(notes, llama, sd)
        assert sum(sd.calls[p] for p in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img")) == 0
    assert r.returncode == 3 and r.stdout == ""
    assert "no image model" in r.stderr and "--sdmodel" in r.stderr
    assert llama.generate_calls == 0
    dead = dead_url()
    r = run_pipe("run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", dead)
    assert r.returncode == 3 and "nothing answers" in r.stderr


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("steps.draw.width=500", "width"),
        ("steps.draw.height=2048", "height"),
        ("steps.draw.steps=0", "steps"),
        ("steps.draw.cfg_scale=30", "cfg_scale"),
        ("steps.draw.seed=-7", "seed"),
    ],
)
def test_values_koboldcpp_would_change_are_recipe_errors(
    llama: FakeLlama, sd: FakeSd, notes: Path, setting: str, field: str
) -> None:
    r = run_pipe(
        "run",
        "thumbnails",
        str(notes),
        "--backend",
        llama.url,
        "--sd-backend",
        sd.url,
        "--set",
        setting,
    )
    assert r.returncode == 2 and f"draw.{field}" in r.stderr.replace("steps[1].", "draw.")
    assert llama.generate_calls == 0 and draws(sd) == 0


def test_killed_between_the_steps_the_rerun_asks_nothing_again(
    llama: FakeLlama, notes: Path, pipe_home: Path, tmp_path: Path
) -> None:
    for i in range(4, 9):
        (notes / f"note{i}.md").write_text(f"Note number {i} about a garden.\n")
    import threading

    gate = threading.Event()  # pictures wait here, so the run is killed while drawing
    with FakeSd(gate=gate) as sd:
        small = ["--set", "steps.draw.width=64", "--set", "steps.draw.height=64"]
        cmd = pipe_cmd(
            "run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url, *small
        )
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db = pipe_home / "pipe.db"

        def scenes_saved() -> set[str]:
            if not db.exists():
                return set()
            with sqlite3.connect(db) as c:
                try:
                    rows = c.execute("SELECT answer FROM cache WHERE step = 'scene'").fetchall()
                except sqlite3.OperationalError:
                    return set()
            return {answer for (answer,) in rows}

        wait_for(
            lambda: len(scenes_saved()) >= 3 and sd.in_flight >= 1,
            what="prompts saved, a picture drawing",
        )
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        saved = scenes_saved()
        gate.set()
        r = run_pipe(
            "run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url,
            *small, "--json",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(records(r.stdout)) == 8 and len(list(notes.glob("*.png"))) == 8
    # Every prompt saved before the kill was reused: the text model was never asked it again
    # (one in flight at the kill is asked twice). Facts, not counts read while a request of
    # the killed run may still be arriving at the fake.
    assert len(llama.prompts) == 8
    assert saved <= {default_answer(p) for p in llama.prompts}  # saved as answered
    asked_again = [p for p, n in llama.prompts.items() if n > 1]
    assert not [p for p in asked_again if default_answer(p) in saved]


def test_restyle_prepares_photos_as_koboldcpp_needs_them(sd: FakeSd, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "landscape_3.jpg", photos / "trip.jpg")
    Image.new("RGBA", (300, 200), (10, 200, 30, 128)).save(photos / "logo.png")  # alpha
    Image.new("RGB", (16, 16), (200, 10, 10)).save(photos / "icon.png")  # under 64 px
    r = run_pipe(
        "run",
        "restyle-images",
        str(photos),
        "--sd-backend",
        sd.url,
        "--json",
        "--set",
        "steps.draw.prompt=a watercolor painting",
        "--set",
        "steps.draw.steps=1",
    )
    assert r.returncode == 0, r.stderr  # the fake answers "" for RGBA, tiny or data: inputs
    assert sd.calls["/sdapi/v1/img2img"] == 3
    for path, body in sd.requests:
        if path != "/sdapi/v1/img2img":
            continue
        init = body["init_images"][0]
        assert not init.startswith("data:")
        import base64

        with Image.open(io.BytesIO(base64.b64decode(init))) as im:
            assert im.mode == "RGB" and min(im.size) >= 64 and max(im.size) <= 1024
        assert body["width"] % 64 == 0 and body["height"] % 64 == 0
    assert sorted(p.name for p in photos.glob("*.restyled.png")) == [
        "icon.restyled.png",
        "logo.restyled.png",
        "trip.restyled.png",
    ]
    # Its own outputs never become inputs, though they are PNGs in the folder.
    r = run_pipe(
        "run",
        "restyle-images",
        str(photos),
        "--sd-backend",
        sd.url,
        "--json",
        "--set",
        "steps.draw.steps=1",
    )
    assert len(records(r.stdout)) == 3 and sd.calls["/sdapi/v1/img2img"] == 3


def test_lines_are_items_for_drawing_and_for_text(
    llama: FakeLlama, sd: FakeSd, tmp_path: Path
) -> None:
    out = tmp_path / "pictures"
    prompts = "a red fox at dawn\n\na blue bird\na red fox at dawn\n"
    r = run_pipe(
        "run",
        "draw",
        "--lines",
        "--sd-backend",
        sd.url,
        "--out",
        str(out),
        *SMALL,
        input=prompts.encode(),
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a-blue-bird.png", "a-red-fox-at-dawn.png"]
    assert draws(sd) == 2  # the repeated line is the same item: its picture came from the cache
    assert llama.generate_calls == 0  # a recipe that only draws asks no text model
    r = run_pipe(
        "run", "summarize-text", "--lines", "--backend", llama.url, "--json", input=b"Why?\nHow?\n"
    )
    assert r.returncode == 0, r.stderr
    assert [x["path"] for x in records(r.stdout)] == ["<line 1>", "<line 2>"]
    assert llama.generate_calls == 2


def test_an_automatic1111_server_draws_too(llama: FakeLlama, notes: Path) -> None:
    """AUTOMATIC1111 (Forge, SD.Next) has no koboldcpp endpoints; the same API draws, and its
    `info` JSON says the seed it used."""
    with FakeSd(a1111=True) as sd:
        r = thumbnails(notes, llama, sd, "--json", "-v")
        assert draws(sd) == 3
    assert r.returncode == 0, r.stderr
    assert "drawing with automatic1111" in r.stderr
    assert all(Path(x["image"]["path"]).is_file() for x in records(r.stdout))


def test_a_recipe_that_only_draws_uses_every_backend_given(tmp_path: Path) -> None:
    """`pipe run draw --backend A --backend B`: a pool of image servers, each drawing."""
    out = tmp_path / "pictures"
    prompts = "".join(f"a heron number {i}\n" for i in range(8)).encode()
    with FakeSd(delay=0.1) as a, FakeSd(delay=0.1) as b, FakeSd(model="another") as c:
        r = run_pipe(
            "run", "draw", "--lines", "--backend", a.url, "--backend", b.url, "--out", str(out),
            *SMALL, input=prompts,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert len(list(out.glob("*.png"))) == 8
        assert draws(a) > 0 and draws(b) > 0 and draws(a) + draws(b) == 8
        assert "answers by backend" in r.stderr
        mixed = run_pipe(
            "run", "draw", "--lines", "--backend", a.url, "--backend", c.url, *SMALL,
            input=b"a heron\n",
        )  # fmt: skip
    assert mixed.returncode == 2, mixed.stderr
    assert "different models" in mixed.stderr and "another" in mixed.stderr
