"""End to end: `pipe run` against the fake llama.cpp server, then `pipe search` finds what
was answered, where the files are after `rename-images`, and as the answers change."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_pipe
from tests.e2e.test_cli_fake import HOSTILE_ANSWER, run_on_terminal
from tests.fakes.llama import FakeLlama, vision_answer

PHOTOS = ROOT / "samples" / "photos"
CAMERAS = ["Canon_PowerShot_S40.jpg", "DSCN0010.jpg", "Kodak_CX7530.jpg", "Pentax_K10D.jpg"]


def answer(prompt: str) -> str:
    """A note's summary names its topic; a photo gets the fake's three words."""
    topic = re.search(r"TOPIC (\w+)", prompt)
    return f"A note about a {topic.group(1)} by the sea." if topic else vision_answer(prompt)


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def folders(tmp_path: Path) -> tuple[Path, Path]:
    notes, album = tmp_path / "notes", tmp_path / "album"
    notes.mkdir()
    album.mkdir()
    for topic in ("lighthouse", "volcano"):
        (notes / f"{topic}.md").write_text(f"TOPIC {topic}\nMore words.\n")
    for name in CAMERAS:
        shutil.copy2(PHOTOS / name, album / name)
    return notes, album


def test_search_finds_answers_and_follows_renames(tmp_path: Path) -> None:
    notes, album = folders(tmp_path)
    with FakeLlama(vision=True, slots=2, answer=answer) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url)
        assert r.returncode == 0, r.stderr
        r = run_pipe("run", "describe-images", str(album), "--backend", server.url, "--json")
        assert r.returncode == 0, r.stderr
        captions = {Path(row["path"]).name: row["answer"] for row in lines(r.stdout)}
        r = run_pipe("search", "lighthouse", "--json")
        assert r.returncode == 0, r.stderr
        (hit,) = lines(r.stdout)
        assert hit["path"] == str(notes / "lighthouse.md") and hit["recipe"] == "summarize-text"
        assert hit["snippet"] == "A note about a [lighthouse] by the sea."
        # Every caption is found, as a phrase, under its photo.
        for name, caption in captions.items():
            r = run_pipe("search", f'"{caption}"', "--recipe", "describe-images", "--json")
            assert str(album / name) in [row["path"] for row in lines(r.stdout)], caption
        assert run_pipe("search", "sea", "--recipe", "describe-images").returncode == 1
        r = run_pipe("search", "sea", "--under", str(notes), "--since", "2000-01-01", "--json")
        assert sorted(Path(row["path"]).name for row in lines(r.stdout)) == [
            "lighthouse.md",
            "volcano.md",
        ]
        r = run_pipe("run", "rename-images", str(album), "--backend", server.url, "--json")
        assert r.returncode == 0, r.stderr
        renamed = {Path(row["path"]).name: row["new_path"] for row in lines(r.stdout)}
    assert not set(CAMERAS) & {p.name for p in album.iterdir()}
    for name, caption in captions.items():
        r = run_pipe("search", f'"{caption}"', "--recipe", "describe-images", "--json")
        hits = {row["path"]: row["recorded_path"] for row in lines(r.stdout)}
        assert hits.get(renamed[name]) == str(album / name), (caption, hits)
        assert all(Path(path).exists() for path in hits)


def test_a_rerun_with_a_changed_answer_replaces_the_indexed_text(tmp_path: Path) -> None:
    notes, _ = folders(tmp_path)
    args = ("run", "summarize-text", str(notes / "volcano.md"))
    with FakeLlama(answer=lambda _: "An ash cloud over the volcano.") as server:
        assert run_pipe(*args, "--backend", server.url).returncode == 0
    assert run_pipe("search", "ash").returncode == 0
    with FakeLlama(answer=lambda _: "Lava flows into the ocean.") as server:
        assert run_pipe(*args, "--backend", server.url, "--redo").returncode == 0
    r = run_pipe("search", "ash")
    assert r.returncode == 1 and r.stdout == ""
    r = run_pipe("search", "lava", "--json")
    assert [row["path"] for row in lines(r.stdout)] == [str(notes / "volcano.md")]


def test_bad_syntax_and_hostile_answers(tmp_path: Path) -> None:
    notes, _ = folders(tmp_path)
    with FakeLlama(answer=lambda _: HOSTILE_ANSWER) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url, "-q")
        assert r.returncode == 0, r.stderr
    r = run_pipe("search", '"bay')
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unterminated" in r.stderr
    code, shown = run_on_terminal("search", "boats")
    assert code == 0, shown
    text = shown.replace(b"\x1b[1;33mBoats\x1b[0m", b"<hit>")  # pipe's own highlight
    assert text.count(b"<hit>") == 2 and b"\x1b" not in text and b"\x07" not in text
    assert b"\\e]0;owned\\x07" in text and "\u202e".encode() not in text
    r = run_pipe("search", "boats", "--json")
    assert {row["answer"] for row in lines(r.stdout)} == {HOSTILE_ANSWER}
