"""One vocabulary for a run's counts: the summary on stderr, `pipe runs` (table and --json)
and `pipe run --json`'s records say the same thing with the same words."""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline import api
from pipeline import recipe as recipes
from pipeline.engine import Options, loop
from tests import real_servers
from tests.conftest import ROOT, run_pipe
from tests.fakes.llama import FakeLlama


def runs_json() -> list[dict[str, Any]]:
    r = run_pipe("runs", "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line]


def summary_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if " failed" in line and "(run " in line)


def test_summary_runs_and_json_agree_on_done_cached_skipped_failed(notes: Path) -> None:
    with FakeLlama() as server:
        first = run_pipe("run", "summarize-text", str(notes), "--backend", server.url)
    assert first.returncode == 0, first.stderr
    later = time.time() + 5
    os.utime(notes / "note1.md", (later, later))  # same text: its answer comes from the cache
    (notes / "note4.md").write_text("A new note about the lighthouse.\n")
    (notes / "note5.md").write_text("Another new note, about the ferry.\n")
    with FakeLlama(failures=["500"]) as server:  # one of the two new notes fails
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            server.url,
            "--json",
            "--retries",
            "0",
            "-j",
            "1",
        )
    assert r.returncode == 1, r.stderr
    statuses = Counter(json.loads(line)["status"] for line in r.stdout.splitlines() if line)
    assert statuses == {"done": 1, "cached": 1, "skipped": 2, "failed": 1}
    words = "1 done, 1 from cache, 2 skipped, 1 failed"
    assert words in summary_line(r.stderr)
    table = run_pipe("runs").stdout.splitlines()[0]
    assert words in table and "written" not in table and "dry run" not in table
    row = runs_json()[0]
    assert {k: row[k] for k in statuses} == dict(statuses)
    assert row["written"] == 0 and row["dry_run"] is False


def test_a_run_that_writes_sidecars_says_how_many(llama: FakeLlama, notes: Path) -> None:
    (notes / "note3.md.summary.txt").write_text("mine\n")  # the user's: never replaced
    sidecars = ("--write", "sidecar", "--include", "*.md")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, *sidecars)
    assert r.returncode == 1, r.stderr
    assert "2 done, 0 from cache, 0 skipped, 1 failed, 2 written" in summary_line(r.stderr)
    assert "2 written" in run_pipe("runs").stdout.splitlines()[0]
    assert runs_json()[0]["written"] == 2
    # A re-run writes only what is missing (the others hold the same answer already).
    (notes / "note3.md.summary.txt").unlink()
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, *sidecars)
    assert "1 written" in summary_line(r.stderr)  # only note3's, from the cache
    assert runs_json()[0]["written"] == 1


def test_dry_runs_are_marked_and_args_are_a_list(llama: FakeLlama, notes: Path) -> None:
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar",
        "--dry-run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "3 previewed, 0 from cache" in summary_line(r.stderr)
    assert run_pipe("run", "summarize-text", str(notes), "--backend", llama.url).returncode == 0
    real, dry = runs_json()
    assert (real["dry_run"], dry["dry_run"]) == (False, True)
    assert dry["args"] == [
        "run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar",
        "--dry-run",
    ]  # fmt: skip
    assert dry["written"] == 0 and real["args"][-1] == llama.url
    table = run_pipe("runs").stdout.splitlines()
    assert "dry run" in table[1] and "3 previewed" in table[1]
    assert "dry run" not in table[0] and "0 done, 3 from cache" in table[0]  # previewed


def test_an_embedded_run_names_its_model_not_its_port() -> None:
    from pipeline.servers import embedded

    real_servers.need_embedded_model()
    r = run_pipe(
        "run",
        "summarize-text",
        str(ROOT / "samples" / "text" / "harbour.md"),
        "--set",
        "ask.max_tokens=4",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    row = runs_json()[0]
    assert row["backend"] == f"embedded ({embedded.find_model().name.removesuffix('.gguf')})"
    assert row["backend"].startswith("embedded (SmolLM2-135M-Instruct")
    assert "127.0.0.1" not in run_pipe("runs").stdout


class FakeBar:
    """Stands in for tqdm on a terminal: remembers how far it was when the total arrived."""

    def __init__(self) -> None:
        self.n = 0
        self._total: int | None = None
        self.n_at_total: int | None = None
        self.first_total: int | None = None

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        if self.n_at_total is None:
            self.n_at_total, self.first_total = self.n, value
        self._total = value

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_progress_bar_gets_its_total_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(40):
        (folder / f"note{i:02}.md").write_text(f"Note {i}.\n")
    recipe = recipes.load("summarize-text")
    db = tmp_path / "state.db"
    with FakeLlama(latency=0.05) as server:
        servers = api.Servers([server.url])
        # Sidecars pipe wrote are not inputs, so they are not counted either.
        for name in ("note00.md", "note01.md"):
            one = api.items(recipe, [str(folder / name)])
            api.run(recipe, one, servers=servers, output=api.Output(write="sidecar"), db=db)
        bar = FakeBar()
        monkeypatch.setattr(loop, "_progress", lambda enabled: bar if enabled else None)
        summary = api.run(
            recipe,
            api.items(recipe, [str(folder)]),
            servers=servers,
            output=api.Output(out=io.StringIO()),
            options=Options(jobs=1, progress=True),
            db=db,
        )
    assert summary.exit_code == 0 and bar.n == 40 and bar.total == 40
    # Known long before the walk could have ended (it runs at most a few items ahead).
    assert bar.n_at_total is not None and bar.n_at_total < 30 and bar.first_total == 40


def test_the_progress_total_is_set_when_the_walk_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items that cannot be walked twice (lines on stdin): the total comes with the last one."""
    recipe = recipes.load("summarize-text")
    bar = FakeBar()
    monkeypatch.setattr(loop, "_progress", lambda enabled: bar if enabled else None)
    with FakeLlama() as server:
        summary = api.run(
            recipe,
            api.stdin_items(recipe, io.BytesIO(b"one\ntwo\nthree\n"), lines=True),
            servers=api.Servers([server.url]),
            output=api.Output(out=io.StringIO()),
            options=Options(progress=True),
            db=tmp_path / "state.db",
        )
    assert summary.exit_code == 0 and bar.n == 3 and bar.total == 3


def test_pictures_and_contact_sheet_pages_count_as_written(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    from tests.fakes.sd import FakeSd

    small = ("--set", "draw.width=64", "--set", "draw.height=64", "--set", "draw.steps=1")
    sheet = tmp_path / "sheet.png"
    with FakeSd() as sd:
        r = run_pipe(
            "run", "thumbnails", str(notes), "--backend", llama.url, "--sd-backend", sd.url,
            *small, "--contact-sheet", str(sheet),
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(list(notes.glob("*.png"))) == 3 and sheet.exists()
    assert "3 done, 0 from cache, 0 skipped, 0 failed, 4 written" in summary_line(r.stderr)
    assert runs_json()[0]["written"] == 4


def test_runs_from_before_the_migration_are_marked_dry_by_their_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.store import database as state
    from pipeline.store import schema

    db = tmp_path / "state.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
    old = state.Store(db)
    for args in (["run", "r", "x", "--dry-run"], ["run", "r", "--dry-run-not", "x"]):
        old.conn.execute("INSERT INTO runs (recipe, args) VALUES ('r', ?)", (json.dumps(args),))
    old.close()
    monkeypatch.undo()
    new = state.Store(db)
    rows = new.conn.execute("SELECT dry_run, written FROM runs ORDER BY id").fetchall()
    new.close()
    assert rows == [(1, 0), (0, 0)]
