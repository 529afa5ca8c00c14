"""Integration: the real `pipe` CLI against real llama.cpp and koboldcpp servers.

Each test kills its server mid-run (SIGKILL), restarts it, and checks that the re-run
completes with every file answered exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from tests import real_servers
from tests.conftest import ROOT, pipe_cmd, run_pipe

pytestmark = pytest.mark.real

TOPICS = [
    "the harbour",
    "a lighthouse",
    "winter apples",
    "the night train",
    "a clockmaker",
    "river otters",
    "paper kites",
    "an old library",
]


def make_notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note{i}.txt").write_text(
            f"Note {i} is about {TOPICS[i % len(TOPICS)]}. It was written on a grey morning, "
            "and it says the work went well and that tomorrow will be better.\n"
        )
    return folder


def done_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'history'").fetchone():
            return {}  # pipe has not created its tables yet
        return dict(
            conn.execute(
                "SELECT path, COUNT(*) FROM history WHERE status IN ('done', 'cached')"
                " GROUP BY path"
            ).fetchall()
        )


def kill_mid_run_then_finish(
    server: real_servers.RealServer, folder: Path, db: Path, n: int
) -> None:
    args = [
        "run",
        "summarize-text",
        str(folder),
        "--backend",
        server.url,
        "--db",
        str(db),
        "--set",
        "ask.max_tokens=12",
        "--wait",
        "2",
        "-q",
    ]
    proc = subprocess.Popen(
        pipe_cmd(*args),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and len(done_counts(db)) >= 2:
            break
        time.sleep(0.1)
    server.kill()
    out, err = proc.communicate(timeout=120)
    first = done_counts(db)
    assert proc.returncode == 3, err.decode()
    assert b"stopped answering" in err
    assert 2 <= len(first) < n, first

    server.start()
    r = run_pipe(*args[:-1], "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    final = done_counts(db)
    assert len(final) == n and set(final.values()) == {1}, final  # each file exactly once
    lines = [line for line in r.stdout.splitlines() if line]
    assert len(lines) == n
    assert sum('"status": "done"' in line for line in lines) == n - len(first)
    assert all('"answer": "' in line for line in lines)


@pytest.mark.parametrize(
    "make", [real_servers.llama_server, real_servers.koboldcpp], ids=["llama.cpp", "koboldcpp"]
)
def test_summarize_kill_restart(
    make: Callable[[Path], real_servers.RealServer], tmp_path: Path
) -> None:
    with make(tmp_path) as server:
        # Enough files that the kill, which lands ~0.1 s after the second answer, always
        # finds some unanswered: a small model answers one in a fraction of a second.
        folder = make_notes(tmp_path / "notes", 12)
        kill_mid_run_then_finish(server, folder, tmp_path / "state.db", 12)


def test_llama_server_text_on_stdin_and_context_cut(tmp_path: Path) -> None:
    """A text far over the context is cut with the server's own tokenizer and answered."""
    with real_servers.llama_server(tmp_path, ctx=512) as server:
        big = ("The lighthouse keeper counted the ships that passed each night. " * 400).encode()
        r = run_pipe(
            "run",
            "summarize-text",
            "--backend",
            server.url,
            "--json",
            "--set",
            "ask.max_tokens=16",
            input=big,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        assert '"cut to' in r.stdout and '"status": "done"' in r.stdout


def test_embedded_model_when_no_server_runs(tmp_path: Path) -> None:
    """The README's first command: no server anywhere, the embedded model answers for real."""
    real_servers.need_embedded_model()
    r = run_pipe(
        "run",
        "summarize-text",
        str(ROOT / "samples" / "text"),
        "--json",
        "--set",
        "ask.max_tokens=40",
        "-v",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "starting the embedded model" in r.stderr and "--backend URL" in r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines() if line]
    assert len(records) == 3 and all(rec["status"] == "done" for rec in records)
    for rec in records:
        # The recipe's repeat_penalty reaches the model: without it SmolLM2 answers the
        # meeting notes with "Tuesday, Tuesday, Wednesday, ..., Monday, Tuesday" to the end.
        words = Counter(w.strip(".,;:").lower() for w in rec["answer"].split() if len(w) > 4)
        assert rec["answer"] and max(words.values(), default=0) <= 2, rec["answer"]


PHOTOS = ROOT / "samples" / "photos"


@pytest.mark.parametrize(
    ("make", "mmproj"),
    [
        (real_servers.llama_server, "tiny-mmproj-gemma3-270m.gguf"),
        (real_servers.koboldcpp, "tiny-mmproj-smollm2.gguf"),
        # The server llamafile runs, before and after its PR #392 changed what it counts.
        (partial(real_servers.llamafile_server, version="0.8.1"), "tiny-mmproj-old-smollm2.gguf"),
        (partial(real_servers.llamafile_server, version="0.8.2"), "tiny-mmproj-old-smollm2.gguf"),
    ],
    ids=["llama.cpp", "koboldcpp", "llamafile-0.8.1", "llamafile-0.8.2"],
)
def test_describe_and_rename_photos_for_real(
    make: Callable[..., real_servers.RealServer], mmproj: str, tmp_path: Path
) -> None:
    """Real image decoding and encoding on the server (random projector: the captions are
    nonsense by design), then dry run, apply and undo of the renames."""
    import shutil

    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("Canon_PowerShot_S40.jpg", "DSCN0010.jpg", "Kodak_CX7530.jpg"):
        shutil.copy2(PHOTOS / name, folder / name)
    before = sorted(p.name for p in folder.iterdir())
    name = "then.name={exif.date:%Y-%m-%d}_{answer|slug}-{counter}{ext}"
    common = ("--set", "ask.max_tokens=12", "--set", name)  # with the recipe's grammar
    with make(tmp_path, "--mmproj", str(real_servers.projector(mmproj))) as server:
        r = run_pipe(
            "run",
            "describe-images",
            str(folder),
            "--backend",
            server.url,
            "--json",
            "--set",
            "ask.max_tokens=8",
            timeout=600,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.count('"status": "done"') == 3
        r = run_pipe(
            "run",
            "rename-images",
            str(folder),
            "--backend",
            server.url,
            "--dry-run",
            *common,
            timeout=600,
        )
        assert r.returncode in (0, 1), r.stderr
        assert sorted(p.name for p in folder.iterdir()) == before
        planned = r.stdout.count(" -> ")
        assert planned == 3, r.stderr  # the grammar makes every caption plain words
        r = run_pipe(
            "run", "rename-images", str(folder), "--backend", server.url, *common, timeout=600
        )
        assert r.returncode in (0, 1), r.stderr
        assert r.stdout.count(" -> ") == planned
    after = sorted(p.name for p in folder.iterdir())
    assert len(after) == 3 and not set(after) & set(before)
    assert "2008-10-22_" in " ".join(after)  # DSCN0010's EXIF date
    r = run_pipe("undo")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(
    "make",
    [real_servers.llama_server, real_servers.llamafile_server],
    ids=["llama.cpp", "llamafile-0.8.1"],
)
def test_a_server_without_projector_is_refused_before_the_first_photo(
    make: Callable[[Path], real_servers.RealServer], tmp_path: Path
) -> None:
    """llamafile's server started without --mmproj answers image requests as if it saw them
    (the image is ignored unread); pipe must notice before describing any photo."""
    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("Kodak_CX7530.jpg", "DSCN0010.jpg"):
        (folder / name).write_bytes((PHOTOS / name).read_bytes())
    with make(tmp_path) as server:
        r = run_pipe("run", "describe-images", str(folder), "--backend", server.url, "--json")
    assert r.returncode == 3, r.stderr
    assert "--mmproj" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""  # no photo was described


def test_llama_server_as_an_openai_compatible_server(tmp_path: Path) -> None:
    """`openai:URL/v1` speaks /v1/chat/completions to the real llama-server, as to vLLM: the
    model from /v1/models, the server's own chat template, pipe's -j default."""
    with real_servers.llama_server(tmp_path, slots=2) as server:
        folder = make_notes(tmp_path / "notes", 3)
        r = run_pipe(
            "run",
            "summarize-text",
            str(folder),
            "--backend",
            f"openai:{server.url}/v1",
            "--json",
            "--set",
            "ask.max_tokens=24",
            "-v",
            timeout=300,
        )
    assert r.returncode == 0, r.stderr
    assert "using openai" in r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["status"] for x in records] == ["done"] * 3
    assert all(x["answer"].strip() and "gemma" in x["model"] for x in records)
