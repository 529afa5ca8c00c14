"""`pipe search` through the real CLI over a database the store wrote: what it prints, to a
pipe, as JSON and on a terminal, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.store.database import Store
from tests.conftest import run_pipe
from tests.e2e.test_cli_fake import run_on_terminal
from tests.store.test_search import record

HOSTILE = "A sunset.\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07 Boats.\u202egpj.exe"


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    """A database with three answers: (its path, the photos' folder)."""
    db, photos = tmp_path / "pipe.db", tmp_path / "photos"
    store = Store(db)
    record(store, "describe-images", photos / "beach.jpg", "A dog on a sunny beach.", "F1")
    record(store, "describe-images", photos / "harbour.jpg", "Boats in a quiet harbour.", "F2")
    record(store, "tag-images", photos / "beach.jpg", "dog, beach, sea", "F3")
    store.close()
    return db, photos


def search(db: Path, *args: str):  # noqa: ANN201
    return run_pipe("search", "--db", str(db), *args)


def test_hits_to_a_pipe_are_plain_lines_with_the_match_marked(
    library: tuple[Path, Path],
) -> None:
    db, photos = library
    r = search(db, "harbour")
    assert r.returncode == 0, r.stderr
    shown = f"{photos / 'harbour.jpg'}  describe-images\n    Boats in a quiet [harbour].\n"
    assert r.stdout == shown
    r = search(db, "dog", "beach")  # several words: one query, every word required
    assert r.returncode == 0 and r.stdout.count("beach.jpg") == 2


def test_json_lines_for_jq(library: tuple[Path, Path]) -> None:
    db, photos = library
    r = search(db, "dog", "--recipe", "describe-images", "--json")
    assert r.returncode == 0, r.stderr
    (hit,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert hit["path"] == str(photos / "beach.jpg") and hit["recipe"] == "describe-images"
    assert hit["answer"] == "A dog on a sunny beach."
    assert hit["snippet"] == "A [dog] on a sunny beach."
    assert isinstance(hit["rank"], float) and hit["recorded_path"] == hit["path"]


def test_limit_under_and_since(library: tuple[Path, Path], tmp_path: Path) -> None:
    db, photos = library
    assert search(db, "dog", "--limit", "1").stdout.count("\n") == 2  # one hit, two lines
    assert search(db, "dog", "--under", str(photos)).stdout.count("beach.jpg") == 2
    assert search(db, "dog", "--under", str(tmp_path / "elsewhere")).returncode == 1
    assert search(db, "dog", "--since", "2000-01-01").stdout.count("beach.jpg") == 2
    r = search(db, "dog", "--since", "2999-01-01T10:00")
    assert r.returncode == 1 and r.stdout == ""
    r = search(db, "dog", "--since", "last tuesday")
    assert r.returncode == 2 and "--since: expected a date" in r.stderr


def test_no_hits_is_exit_1_with_nothing_on_stdout(library: tuple[Path, Path]) -> None:
    r = search(library[0], "volcano")
    assert r.returncode == 1 and r.stdout == "" and r.stderr == "pipe: no answer matches\n"


@pytest.mark.parametrize(
    ("query", "problem"),
    [('"unbalanced', "unterminated string"), ("AND AND", "syntax error"), ("col:x", "column")],
)
def test_a_query_fts5_cannot_read_is_one_line_and_exit_2(
    library: tuple[Path, Path], query: str, problem: str
) -> None:
    r = search(library[0], query)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("pipe: error: cannot read the search query") and problem in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_no_database_yet_is_one_line(tmp_path: Path) -> None:
    r = search(tmp_path / "none.db", "dog")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no database at" in r.stderr and not (tmp_path / "none.db").exists()


def test_a_hostile_answer_and_name_reach_a_terminal_escaped(tmp_path: Path) -> None:
    db, photo = tmp_path / "pipe.db", tmp_path / "b\x1b[31mred.jpg"
    store = Store(db)
    record(store, "describe-images", photo, HOSTILE, "F1")
    store.close()
    code, shown = run_on_terminal("search", "--db", str(db), "sunset")
    assert code == 0, shown
    text = shown.replace(b"\x1b[1;33msunset\x1b[0m", b"<hit>")  # pipe's own highlight only
    assert b"<hit>" in text and b"\x1b" not in text and b"\x07" not in text
    assert "\u202e".encode() not in text
    assert b"\\e]0;owned\\x07\\e[2J" in text and b"b\\e[31mred.jpg" in text
    # To a pipe and as JSON: the bytes as the model wrote them.
    r = search(db, "sunset", "--json")
    assert json.loads(r.stdout)["answer"] == HOSTILE
