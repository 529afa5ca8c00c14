"""A server pipe has used before is known from the store (`servers/remembered.py`): a run
over a finished folder asks it nothing and needs it not to be up, as cron runs it. It is
asked only when an item needs an answer; if it then names another model, the run stops
(exit 3) and the next one keys by the new name."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, pipe_cmd
from tests.fakes.llama import FakeLlama, dead_url, free_port
from tests.fakes.sd import FakeSd


@pytest.fixture(autouse=True)
def nothing_on_default_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No default server answers and no embedded model is installed."""
    monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", dead_url())
    monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", dead_url())
    monkeypatch.setenv("PIPE_EMBEDDED_MODEL", str(tmp_path / "no-embedded-model.gguf"))
    monkeypatch.delenv("PIPE_SD_BACKEND", raising=False)


def cron(*args: str) -> subprocess.CompletedProcess[str]:
    """As cron runs it: stdin from /dev/null, no terminal."""
    return subprocess.run(
        pipe_cmd(*args), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def summarize(notes: Path, *backends: str) -> subprocess.CompletedProcess[str]:
    flags = [x for url in backends for x in ("--backend", url)]
    return cron("run", "summarize-text", str(notes), "--write", "sidecar", *flags)


@pytest.fixture
def server() -> Iterator[FakeLlama]:
    with FakeLlama(port=free_port(), model="model-a") as fake:
        yield fake


def test_a_finished_folder_asks_the_given_server_nothing(server: FakeLlama, notes: Path) -> None:
    assert summarize(notes, server.url).returncode == 0
    asked = len(server.requests)
    again = summarize(notes, server.url)
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert len(server.requests) == asked  # not even a look at what it is


def test_a_finished_folder_needs_no_server_up(server: FakeLlama, notes: Path) -> None:
    first = summarize(notes, server.url)
    assert first.returncode == 0 and "3 done" in first.stderr
    server.stop()
    again = summarize(notes, server.url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == again.stderr == ""
    # A new file needs the server: now it is asked, and being down is one line, exit 3.
    (notes / "note4.md").write_text("A new note.\n")
    new = summarize(notes, server.url)
    assert new.returncode == 3
    lines = new.stderr.strip().splitlines()
    assert any(server.url.removeprefix("http://") in x and "running" in x for x in lines), lines
    assert "Traceback" not in new.stderr
    assert not (notes / "note4.md.summary.txt").exists()
    assert (notes / "note1.md.summary.txt").exists()


def test_a_server_that_names_another_model_stops_the_run_once(
    server: FakeLlama, notes: Path
) -> None:
    assert summarize(notes, server.url).returncode == 0
    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    with FakeLlama(port=port, model="model-b") as other:
        assert summarize(notes, other.url).returncode == 0  # finished: not asked
        assert other.requests == []
        (notes / "note4.md").write_text("A new note.\n")
        changed = summarize(notes, other.url)
        assert changed.returncode == 3
        assert "'model-b', not 'model-a'" in changed.stderr
        assert "run the same command again" in changed.stderr
        assert other.generate_calls == 0  # nothing answered under the old keys
        again = cron(
            "run", "summarize-text", str(notes), "--write", "sidecar", "--backend", other.url, "-v"
        )
        assert again.returncode == 0, again.stderr
        assert "4 done" in again.stderr  # the new model redoes the folder, as before
        assert f"using llama.cpp at {other.url} (model model-b" in again.stderr


def test_a_pool_known_from_last_time_is_not_asked(notes: Path) -> None:
    with FakeLlama(model="m") as one, FakeLlama(model="m") as two:
        assert summarize(notes, one.url, two.url).returncode == 0
        asked = len(one.requests) + len(two.requests)
        one.stop()
        again = summarize(notes, one.url, two.url)
        assert again.returncode == 0 and again.stdout == again.stderr == ""
        assert len(one.requests) + len(two.requests) == asked
        (notes / "note4.md").write_text("A new note.\n")
        before = len(two.requests)
        new = summarize(notes, one.url, two.url)
        assert new.returncode == 0, new.stderr  # the pool opens now, with the member that is up
        assert (notes / "note4.md.summary.txt").exists()
        assert any(path == "/completion" for path, _ in two.requests[before:])


def test_a_default_port_server_known_from_last_time_is_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found on a default port once, it is known after that: not asked for a finished
    folder, up or down; when it is gone and a file needs an answer, the run says so rather
    than redo the folder with the embedded model; `--backend embedded` chooses that."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 48), (10, 90, 200)).save(photos / "p.jpg")
    args = ("run", "describe-images", str(photos), "--write", "sidecar")
    with FakeLlama(vision=True, model="seeing") as seer:
        monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", seer.url)
        first = cron(*args)
        assert first.returncode == 0, first.stderr
        asked = len(seer.requests)
        up = cron(*args)
        assert up.returncode == 0 and up.stdout == up.stderr == ""
        assert len(seer.requests) == asked
        where = seer.url.removeprefix("http://")
    down = cron(*args)
    assert down.returncode == 0, down.stderr
    assert down.stdout == down.stderr == ""
    Image.new("RGB", (64, 48), (200, 90, 10)).save(photos / "q.jpg")
    new = cron(*args)
    assert new.returncode == 3
    error = new.stderr.strip().splitlines()[-1]
    assert f"pipe last used llama.cpp at {where} (model seeing)" in error
    assert "--backend embedded" in error
    chosen = cron(*args, "--backend", "embedded")
    assert chosen.returncode == 3 and "the embedded model reads only text" in chosen.stderr


def test_a_text_recipe_waits_for_its_default_server_not_the_embedded_model(
    notes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With an embedded model installed (one that cannot start: trying is exit 3 with its
    own line), a gone default server is said, and `--backend embedded` tries the model."""
    not_a_model = tmp_path / "embedded.gguf"
    not_a_model.write_bytes(b"not a model")
    monkeypatch.setenv("PIPE_EMBEDDED_MODEL", str(not_a_model))
    with FakeLlama(model="usual") as usual:
        monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", usual.url)
        assert summarize(notes).returncode == 0
    assert summarize(notes).returncode == 0  # finished: the embedded model is not started
    (notes / "note4.md").write_text("A new note.\n")
    gone = summarize(notes)
    assert gone.returncode == 3 and "pipe last used llama.cpp" in gone.stderr
    assert "embedded model server did not start" not in gone.stderr
    embedded = summarize(notes, "embedded")
    assert embedded.returncode == 3 and "embedded model server did not start" in embedded.stderr
    r = cron("doctor", "summarize-text")
    assert r.returncode == 3 and "pipe last used llama.cpp" in r.stdout
    r = cron("doctor", "summarize-text", "--backend", "embedded")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "embedded.gguf" in r.stdout


def test_thumbnails_with_the_image_server_down_skip_a_finished_folder(
    server: FakeLlama, notes: Path
) -> None:
    small = ("--set", "draw.width=64", "--set", "draw.height=64", "--set", "draw.steps=1")
    with FakeSd() as sd:
        args = ("run", "thumbnails", str(notes), "--backend", server.url, "--sd-backend", sd.url)
        first = cron(*args, *small)
        assert first.returncode == 0, first.stderr
        drawn = len(sd.requests)
    server.stop()
    again = cron(*args, *small)
    assert again.returncode == 0, again.stderr
    assert again.stderr == "" and again.stdout == first.stdout  # the pictures' paths again
    assert len(sd.requests) == drawn
    (notes / "note4.md").write_text("A new note.\n")
    new = cron(*args, *small)
    assert new.returncode == 3 and "Traceback" not in new.stderr


def test_what_is_remembered_holds_no_password(server: FakeLlama, notes: Path) -> None:
    with_password = server.url.replace("http://", "http://me:hunter2secret@")
    r = summarize(notes, with_password)
    assert r.returncode == 0, r.stderr
    database = next((Path(notes.parent) / "pipe-home").rglob("*.db"))
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT model, info FROM started_models").fetchall()
    assert rows and all("hunter2secret" not in f"{key}{info}" for key, info in rows)
    assert b"hunter2secret" not in database.read_bytes()


def test_a_hostile_name_is_bounded_and_never_raw(notes: Path, tmp_path: Path) -> None:
    """A server naming its model with terminal escapes, a lone surrogate and 200,000
    characters: what is kept is bounded, and the line that says it changed is escaped."""
    with FakeLlama(model="\x1b[31mEVIL\x07\udcff" + "x" * 200_000) as hostile:
        assert summarize(notes, hostile.url).returncode == 0
        database = next((tmp_path / "pipe-home").rglob("*.db"))
        with sqlite3.connect(database) as db:
            [(info,)] = db.execute("SELECT info FROM started_models").fetchall()
        assert len(info) < 10_000
        hostile.model = "\x1b]0;pwned\x07" + "y" * 200_000
        (notes / "note4.md").write_text("A new note.\n")
        changed = summarize(notes, hostile.url)
    assert changed.returncode == 3
    assert "\x1b" not in changed.stderr and "\x07" not in changed.stderr
    assert len(changed.stderr) < 12_000 and changed.stderr.count("\n") == 2  # summary, error
