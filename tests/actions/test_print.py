"""The print action: answers as text (with headers for several files) or JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.answers import Picture
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.support import TEXT, opened


def test_it_prints_each_answer_on_its_own_line(store: Store) -> None:
    action, out = opened("print", TEXT, store)
    action.apply(Result("a.txt", "done", "First.\n\n"))
    action.apply(Result("b.txt", "cached", "Second."))
    assert out.getvalue() == "First.\nSecond.\n"


def test_headers_name_each_file_and_a_failure_prints_nothing(store: Store) -> None:
    action, out = opened("stdout", TEXT, store, headers=True)  # `--write stdout` is print
    action.apply(Result("a.txt", "done", "First."))
    action.apply(Result("b.txt", "failed", error="the model said no"))
    action.apply(Result("c.txt", "skipped", "Third."))
    assert out.getvalue() == "==> a.txt <==\nFirst.\n\n==> c.txt <==\nThird.\n"


def test_json_lines_carry_every_result_failures_included(store: Store) -> None:
    action, out = opened("print", TEXT, store, as_json=True)
    action.apply(Result("a.txt", "done", "First.", prompt_tokens=3))
    action.apply(Result("b.txt", "failed", error="no"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"path": "a.txt", "status": "done", "answer": "First.", "model": "m", "prompt_tokens": 3},
        {"path": "b.txt", "status": "failed", "error": "no", "model": "m"},
    ]


def test_a_picture_is_shown_by_its_file_never_its_pixels(store: Store) -> None:
    picture = Picture.of(b"png bytes", 64, 32, seed=7)
    action, out = opened("print", TEXT, store)
    action.apply(Result("a.txt", "done", picture, output="a.txt.png"))
    action.apply(Result("b.txt", "done", picture))
    assert out.getvalue() == (
        f"a.txt.png (64x32, seed 7)\npicture {picture.sha256[:12]} (64x32, seed 7)\n"
    )


def test_print_writes_no_file(store: Store, folder: Path) -> None:
    (folder / "a.txt").write_text("A note.")
    action, _ = opened("print", TEXT, store)
    action.apply(Result(str(folder / "a.txt"), "done", "First."))
    action.close(1)
    assert [p.name for p in folder.iterdir()] == ["a.txt"]
