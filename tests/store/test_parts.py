"""The store's parts, each over the store's shared connections: runs, items and claims, the
answer cache, outputs, history; migrations only when the schema is behind; every
connection closed by close()."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from pipeline.answers import Picture
from pipeline.store import schema
from pipeline.store.database import Counts, Store
from pipeline.store.items import FileRow
from tests.conftest import run_pipe


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.db")


def cache_row(fingerprint: str, answer: object) -> dict[str, object]:
    return {
        "fingerprint": fingerprint,
        "step": "ask",
        "answer": answer,
        "model": "m",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "duration_ms": 5,
    }


def history(status: str = "done", fingerprint: str | None = "fp") -> dict[str, object]:
    return {
        "status": status,
        "fingerprint": fingerprint,
        "error": None,
        "note": None,
        "started": "2026-01-01T00:00:00.000+00:00",
        "duration_ms": 5,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "attempts": 1,
    }


def test_a_run_is_recorded_counted_and_ended(store: Store) -> None:
    run = store.start_run("r", "built-in", ["run", "http://u:secret@h/"], "http://u:secret@h/", "m")
    assert store.run_alive(run)
    store.end_run(run, "done", 0, Counts(done=2, cached=1, skipped=3, written=1))
    (row,) = store.runs()
    assert (row["status"], row["exit_code"], row["pid"]) == ("done", 0, os.getpid())
    assert Counts.of_run(row) == Counts(done=2, cached=1, skipped=3, written=1)
    assert "secret" not in row["args"] + row["backend"]
    store.set_run_backends(run, {"http://a": 2})
    assert store.runs()[0]["backends"] == '{"http://a": 2}'


def test_an_item_is_claimed_finished_and_then_found_finished(store: Store) -> None:
    run = store.start_run("r", "built-in", [], "u", "m")
    assert store.claim("r", "/d/f", run, 10, 20, "k", False) == ("claimed", None)
    assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 1
    store.finish(
        "r",
        "/d/f",
        run,
        status="done",
        size=10,
        mtime_ns=20,
        hash="h",
        ask_key="k",
        fingerprint="fp",
        reason=None,
        attempts=1,
        history=history(),
        cache_rows=[cache_row("fp", "The answer.")],
    )
    assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    row, answer = store.item_and_answer("r", "/d/f")
    assert row is not None and row.is_finished(10, 20, "k") and answer == "The answer."
    assert not row.is_finished(10, 21, "k") and not row.is_finished(10, 20, "other")
    verdict, previous = store.claim("r", "/d/f", run, 10, 20, "k", False)
    assert verdict == "finished" and previous == row
    assert store.claim("r", "/d/f", run, 10, 20, "k", True)[0] == "claimed"  # --redo
    assert store.file_row("r", "/d/f") == FileRow(row, "The answer.", None)
    (line,) = store.history_rows(["/d/f"])
    assert (line["status"], line["answer"], line["model"]) == ("done", "The answer.", "m")


def test_a_released_claim_is_free_for_another_run(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    run_a, run_b = (s.start_run("r", "built-in", [], "u", "m") for s in (a, b))
    a.claim("r", "/f", run_a, 1, 1, "k", False)
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "busy"
    a.release("r", "/f", run_a)
    b.run_table._alive.clear()  # the liveness it remembers for 2 s is not the point here
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "claimed"
    a.close()
    b.close()


def test_the_answer_cache_keeps_text_and_pictures(store: Store) -> None:
    picture = Picture(width=2, height=1, seed=7, sha256="abc", png=b"PNG")
    store.save_answers([cache_row("t", "text"), cache_row("p", picture)])
    assert store.cached_answer("t") == "text"
    cached = store.cached_answer("p")
    assert isinstance(cached, Picture) and cached.sha256 == "abc"
    assert store.picture_png("abc") == b"PNG"
    store.forget_answer("t")
    assert store.cached_answer("t") is None and store.cached_answer("p") is not None


def test_outputs_are_remembered_and_counted(store: Store) -> None:
    store.remember_output("/d/a.txt", "digest-a", 5)
    store.remember_output("/d/sub/b.txt", "digest-b")
    assert store.outputs_written == 2
    assert store.output_digest("/d/a.txt") == "digest-a"
    assert store.written_output("/d/a.txt") == ("digest-a", 5)
    assert store.written_output("/d/sub/b.txt") == ("digest-b", None)
    assert store.is_output("/d/a.txt") and not store.is_output("/d/c.txt")


def test_a_folders_files_come_from_items_and_outputs_in_one_query(store: Store) -> None:
    run = store.start_run("r", "built-in", [], "u", "m")
    for path in ("/d/a.txt", "/d/b.txt", "/d/sub/c.txt", "/d0/e.txt"):
        store.claim("r", path, run, 1, 2, "k", False)
    store.remember_output("/d/a.txt.summary.txt", "digest")
    store.remember_output("/d/b.txt", "digest-b")  # an input pipe once wrote
    store.remember_output("/d/sub/c.txt.summary.txt", "digest")
    files = store.files_in_folder("r", "/d/", "", 10)
    assert [(key, file.item is not None, file.output) for key, file in files] == [
        ("/d/a.txt", True, None),
        ("/d/a.txt.summary.txt", False, "digest"),
        ("/d/b.txt", True, "digest-b"),
    ]
    assert files[0][1] == store.file_row("r", "/d/a.txt")
    assert [key for key, _ in store.files_in_folder("r", "/d/", "/d/a.txt.", 2)] == [
        "/d/a.txt.summary.txt",
        "/d/b.txt",
    ]
    assert store.files_in_folder("other recipe", "/d/", "", 10)[0][0] == "/d/a.txt.summary.txt"


def test_a_current_database_is_opened_without_a_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    before = path.stat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlite3, "connect", traced)
        store = Store(path)
        store.runs()
        store.close()
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    written = [s for s in statements if not s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    assert written == [], written
    assert not [s for s in statements if "=" in s and s.upper().startswith("PRAGMA JOURNAL")]


def test_pipe_runs_works_on_a_read_only_current_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    store.end_run(store.start_run("r", "built-in", [], "u", "m"), "done", 0, Counts(done=1))
    store.close()
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        r = run_pipe("runs", "--db", str(path))
    finally:
        path.chmod(0o644)
    assert r.returncode == 0, r.stderr
    assert path.read_bytes() == before


def test_a_database_behind_gets_only_the_migrations_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:7])
        Store(path).close()
    store = Store(path)
    names = [r[0] for r in store.conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in schema.MIGRATIONS]
    assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
    store.close()


def test_close_closes_every_threads_connection(store: Store) -> None:
    store.save_answers([cache_row("fp", "text")])
    answers: list[object] = []
    threads = [threading.Thread(target=lambda: answers.append(store.cached_answer("fp")))]
    threads.append(threading.Thread(target=lambda: answers.append(store.is_output("/x"))))
    for thread in threads:
        thread.start()
        thread.join()
    assert answers == ["text", False]
    assert store.connections.open_readers() == 2
    store.close()
    assert store.connections.open_readers() == 0
    with pytest.raises(sqlite3.ProgrammingError):
        store.conn.execute("SELECT 1")
