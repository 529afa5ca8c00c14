"""What a re-run over a finished folder costs (issue #15's cron target): a query per chunk of
files rather than several per file, no re-hashing of sidecars, and no HTTP client, image
library or progress bar loaded for it."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import recipe as recipes
from pipeline.actions import ACTIONS, ActionContext, ActionError, action_class, open_action
from pipeline.actions import base as actions_base
from pipeline.backends import connect
from pipeline.engine import Options, Runner, file_items
from pipeline.sources import Filters, expand
from pipeline.store import folder_rows
from pipeline.store.database import Store
from pipeline.store.folder_rows import FolderRows
from tests.conftest import ROOT
from tests.fakes.llama import FakeLlama


def test_folder_rows_agree_with_one_query_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names that sort around the separator ("a b", "a-b", "a.b", "a/…"), subfolders
    between files, chunks smaller than a folder: every answer is the per-key one."""
    monkeypatch.setattr(folder_rows, "CHUNK", 3)
    stored = {
        f"/r/{name}": name
        for name in ("a", "a b", "a-b", "a.b", "a0", "b", "c", "d", "e", "f", "é", "z")
    }
    stored |= {"/r/a/x": "deep", "/r/a/y/z": "deeper", "/r.txt": "beside", "/s/a": "other"}
    loads: list[tuple[str, str]] = []

    def load(folder: str, start: str, limit: int) -> list[tuple[str, str]]:
        loads.append((folder, start))
        low, high = folder_rows.folder_range(folder)
        keys = sorted(k for k in stored if max(low, start) <= k < high)
        return [(k, stored[k]) for k in keys if "/" not in k[len(folder) :]][:limit]

    rows = FolderRows(load, stored.get)
    asked = [f"/r/{n}" for n in ("a", "a b", "a-b", "a.b", "a0", "b", "bb", "c", "é", "z")]
    asked += ["/r/a/x", "/r/a/y/z", "/r/a/nothing", "/r/zz", "/r.txt", "/s/a", "/s/b", "rel"]
    for key in [*asked, *random.Random(1).sample(asked, len(asked))]:
        assert rows.get(key) == stored.get(key), key
    assert len(loads) < 2 * len(asked)


def test_a_rerun_over_a_finished_folder_reads_the_store_by_chunks(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    for i in range(300):
        (folder / ("sub" if i % 3 == 0 else "") / f"n{i:03}.txt").write_text(f"note {i}\n")
    recipe = recipes.load("summarize-text")
    store = Store(tmp_path / "state.db")
    statements: list[str] = []

    def run(server: FakeLlama) -> tuple[int, int, int]:
        out = io.StringIO()
        backend = connect(server.url)
        action = open_action("sidecar", ActionContext(recipe, store, out, model="m"))
        items = file_items(expand([str(folder)], Filters(patterns=("*.txt",))))
        summary = Runner(recipe, backend, store, action, Options()).run(items, [])
        backend.close()
        assert summary.exit_code == 0 and out.getvalue() == ""
        return summary.counts.done, summary.counts.skipped, summary.counts.written

    with FakeLlama() as server:
        assert run(server) == (300, 0, 300)
        sidecars = {p: p.stat().st_mtime_ns for p in folder.rglob("*.summary.txt")}
        store.conn.set_trace_callback(statements.append)
        assert run(server) == (0, 300, 0)  # the sidecars are not inputs
    store.close()
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.summary.txt")} == sidecars
    per_file = [s for s in statements if "FROM items" in s or "FROM outputs" in s]
    assert len(per_file) < 30, f"{len(per_file)} queries for 300 files and their sidecars"


def test_a_finished_rerun_loads_no_http_client_image_library_or_progress_bar(
    tmp_path: Path,
) -> None:
    """A cron re-run with nothing on the default ports: the port is found closed without
    an HTTP client, and nothing is decoded or drawn."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("A note.\n")
    with FakeLlama(model="m.gguf") as server:
        args = ["run", "summarize-text", str(folder), "--write", "sidecar"]
        env = {**os.environ, "PIPE_DEFAULT_BACKENDS": server.url}
        first = subprocess.run(
            [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True
        )
        assert first.returncode == 0, first.stderr
    model = tmp_path / "m.gguf"
    model.write_bytes(b"not a model")
    # The server is gone: its port is closed now.
    env = {**env, "PIPE_EMBEDDED_MODEL": str(model)}
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['pipe', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('pipeline', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "heavy = ('httpx', 'PIL', 'pyvips', 'tqdm')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    again = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == "[]\n"


def test_the_action_registry_says_what_each_class_says() -> None:
    """Actions are imported when opened; their registry line must agree with the class."""
    for name, (_, _, choosable) in ACTIONS.items():
        cls = action_class(name)
        assert (cls.name, cls.choosable) == (name, choosable)


@pytest.mark.parametrize(
    ("content", "same"),
    [(b"abcdefg", True), (b"abcdefh", False), (b"xbcdefg", False), (b"abcdefgh", False)],
)
def test_a_sidecar_is_compared_with_its_answer_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, same: bool
) -> None:
    """Not hashed: read and compared, 3 bytes at a time here; a file pipe did not write is
    never replaced."""
    monkeypatch.setattr(actions_base, "COMPARE_CHUNK", 3)
    path = tmp_path / "a.txt.summary.txt"
    path.write_bytes(content)
    store = Store(tmp_path / "s.db")
    if same:
        assert actions_base.check_replaceable(store, str(path), b"abcdefg") is True
    else:
        with pytest.raises(ActionError, match="not written by pipe"):
            actions_base.check_replaceable(store, str(path), b"abcdefg")
    store.close()
