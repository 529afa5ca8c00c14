"""pipe as a library: the runner, store and actions used directly, without the CLI."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from pipeline import recipe as recipes
from pipeline.actions import Action
from pipeline.backends import connect
from pipeline.runner import Item, Options, Runner, file_items
from pipeline.sources import Entry, Filters, expand
from pipeline.state import Store
from tests.fakes import FakeLlama


def run(tmp_path: Path, items: list[Item], server: FakeLlama) -> tuple[int, list[dict]]:
    out = io.StringIO()
    backend = connect(server.url)
    store = Store(tmp_path / "state.db")
    action = Action(out=out, as_json=True, headers=False, model="m")
    summary = Runner(recipes.load("summarize-text"), backend, store, action, Options()).run(
        items, []
    )
    store.close()
    backend.close()
    return summary.exit_code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_file_that_vanishes_mid_run_is_one_error(tmp_path: Path) -> None:
    keep, gone = tmp_path / "keep.txt", tmp_path / "gone.txt"
    keep.write_text("still here\n")
    gone.write_text("about to vanish\n")
    entries = list(expand([str(tmp_path)], Filters(patterns=("*.txt",))))
    gone.unlink()  # after the walk saw it, before it is read
    with FakeLlama() as server:
        code, records = run(tmp_path, list(file_items(entries)), server)
    by_name = {os.path.basename(r["path"]): r for r in records}
    assert code == 1
    assert by_name["gone.txt"]["status"] == "failed"
    assert "No such file" in by_name["gone.txt"]["error"]
    assert by_name["keep.txt"]["status"] == "done"


def test_entries_with_errors_are_recorded_and_the_rest_runs(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    items = [
        Item(Entry("missing.txt", error="no such file or folder")),
        Item(Entry(str(good), os.stat(good))),
    ]
    with FakeLlama() as server:
        code, records = run(tmp_path, items, server)
    assert code == 1 and [r["status"] for r in records] == ["failed", "done"]
