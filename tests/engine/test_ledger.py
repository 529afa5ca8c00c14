"""pipeline.engine.ledger: a run's bookkeeping on the main thread, against a real store:
which files need work, which are settled (and with what answer), and what is recorded of
each so that the next run (cron's) knows."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from pipeline import recipe as recipes
from pipeline.engine.items import Done, Item, stdin_item
from pipeline.engine.ledger import Ledger
from pipeline.engine.options import Options
from pipeline.results import Result
from pipeline.sources import Entry
from pipeline.store.database import Store

ASK_KEY = "the recipe's settings"


def a_run(db: Path, **options: object) -> Ledger:
    """A new run's ledger, on its own store connection as a new process would have."""
    store = Store(db)
    recipe = recipes.load("summarize-text")
    run_id = store.start_run(recipe.name, "built-in", [], "http://127.0.0.1:1", "m")
    return Ledger(store, recipe, run_id, ASK_KEY, Options(**options))  # type: ignore[arg-type]


def item(path: Path) -> Item:
    return Item(Entry(str(path), os.stat(path)))


def answered(it: Item, answer: str = "A busy harbour.", fingerprint: str = "fp-1") -> Done:
    row = {"fingerprint": fingerprint, "step": "summarize", "answer": answer, "model": "m"}
    row |= {"prompt_tokens": 30, "completion_tokens": 5, "duration_ms": 12}
    result = Result(it.path, "done", answer=answer, prompt_tokens=30, completion_tokens=5)
    return Done(it, result, hash="h", fingerprint=fingerprint, cache_rows=[row])


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "note.md"
    path.write_text("The harbour was busy today.\n")
    return path


def test_a_new_file_is_claimed_and_a_finished_one_is_settled_with_its_answer(
    tmp_path: Path, note: Path
) -> None:
    db = tmp_path / "pipe.db"
    first = a_run(db)
    assert first.admit(item(note)) is None  # claimed: send it to a worker
    first.record(answered(item(note)))
    assert (first.counts.done, first.counts.prompt_tokens, first.counts.completion_tokens) == (
        1,
        30,
        5,
    )
    settled = a_run(db).admit(item(note))
    assert isinstance(settled, Result)  # only shown: nothing to record
    assert (settled.status, settled.answer) == ("skipped", "A busy harbour.")


def test_a_changed_file_or_other_settings_or_redo_means_work_again(
    tmp_path: Path, note: Path
) -> None:
    db = tmp_path / "pipe.db"
    first = a_run(db)
    first.admit(item(note))
    first.record(answered(item(note)))
    redo = a_run(db, redo=True)
    assert redo.admit(item(note)) is None
    redo.release(item(note))  # each run lets go, or the next would find the file busy
    other = a_run(db)
    other.ask_key = "other settings"
    assert other.admit(item(note)) is None
    other.release(item(note))
    note.write_text("The harbour was quiet.\n")
    assert a_run(db).admit(item(note)) is None


def test_a_file_another_run_works_on_is_skipped_said_and_counted(
    tmp_path: Path, note: Path
) -> None:
    db = tmp_path / "pipe.db"
    first = a_run(db)
    assert first.admit(item(note)) is None
    said: list[Result] = []
    second = a_run(db, on_note=said.append)
    busy = second.admit(item(note))
    assert isinstance(busy, Result)
    assert busy.notes == ["another run is processing it"]
    assert second.counts.busy == 1 and said == [busy]
    first.release(item(note))  # the first run let go (it stopped before the file)
    assert second.admit(item(note)) is None


def test_a_dry_run_leaves_the_file_to_the_real_run(tmp_path: Path, note: Path) -> None:
    db = tmp_path / "pipe.db"
    preview = a_run(db, dry_run=True)
    preview.admit(item(note))
    preview.record(answered(item(note)))
    assert preview.counts.done == 1
    real = a_run(db)
    assert real.admit(item(note)) is None  # still to do, its answer already in the cache
    assert real.store.cached_answer("fp-1") == "A busy harbour."


def test_a_failure_is_said_counted_and_tried_again_next_run(tmp_path: Path, note: Path) -> None:
    db = tmp_path / "pipe.db"
    errors: list[Result] = []
    first = a_run(db, on_error=errors.append)
    first.admit(item(note))
    failed = Result(note.name, "failed", error="the server answered HTTP 500")
    first.record(Done(item(note), failed, hash="h"))
    assert first.counts.failed == 1 and errors == [failed]
    assert a_run(db).admit(item(note)) is None


def test_a_file_skipped_for_a_reason_says_it_once_and_stays_skipped(
    tmp_path: Path, note: Path
) -> None:
    db = tmp_path / "pipe.db"
    said: list[Result] = []
    first = a_run(db, on_note=said.append)
    first.admit(item(note))
    skipped = Result(note.name, "skipped", notes=["empty file"])
    first.record(Done(item(note), skipped, hash="h"))
    assert first.counts.skipped == 1 and said == [skipped]
    again = a_run(db).admit(item(note))
    assert isinstance(again, Result)
    assert (again.answer, again.notes) == (None, ["empty file"])


def test_an_unreadable_entry_fails_without_a_claim(tmp_path: Path) -> None:
    entry = Entry(str(tmp_path / "gone.md"), error="No such file or directory")
    failed = a_run(tmp_path / "pipe.db").admit(Item(entry))
    assert isinstance(failed, Done)  # recorded, never claimed
    assert (failed.result.status, failed.result.error) == ("failed", "No such file or directory")


def test_stdin_text_keeps_history_and_cache_but_no_item(tmp_path: Path) -> None:
    run = a_run(tmp_path / "pipe.db")
    text = stdin_item(b"The harbour was busy today.")
    assert run.admit(text) is None
    run.record(answered(text))
    assert run.store.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    assert run.store.conn.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 1
    assert run.store.cached_answer("fp-1") == "A busy harbour."


def test_history_keeps_a_photos_date_camera_and_place(tmp_path: Path, note: Path) -> None:
    run = a_run(tmp_path / "pipe.db")
    run.admit(item(note))
    done = answered(item(note))
    exif = {"date": datetime(2019, 7, 4, 18, 22, 5), "date_source": "EXIF DateTimeOriginal"}
    done.result.fields["exif"] = exif | {"camera": "Canon PowerShot S40", "gps": "43.4,11.8"}
    run.record(done)
    [meta] = [json.loads(m) for (m,) in run.store.conn.execute("SELECT meta FROM history")]
    assert meta == {
        "date": "2019-07-04 18:22:05 (from EXIF DateTimeOriginal)",
        "camera": "Canon PowerShot S40",
        "gps": "43.4,11.8",
    }


def test_answers_saved_early_survive_a_run_killed_before_the_file_finishes(
    tmp_path: Path, note: Path
) -> None:
    db = tmp_path / "pipe.db"
    run = a_run(db)
    run.admit(item(note))
    done = answered(item(note))
    run.save_answers(done)
    assert done.cache_rows == []  # not saved twice when the item is recorded
    assert a_run(db).store.cached_answer("fp-1") == "A busy harbour."
