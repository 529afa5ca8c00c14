"""Benchmark: the re-check, the hot path of every cron run (issue #16).

  recheck   `pipe run summarize-text` over 100,000 and 1,000,000 finished files against an
            instant fake; target 100k <= 3 s, 1M <= 30 s at <= 100 MB peak RSS, 0 model calls

The tree (1,000,000 files of the same text, 1,000 a folder, in ten parts of 100,000) and its
database are made once and kept in bench/results/recheck/. Only the first folder is run
through pipe for real; its rows (items, history, the run's counts) are then cloned for
every other folder, path for path: the files are alike to the byte and to the nanosecond of
their mtime, so a real run over the whole tree would have written exactly these rows.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.llama import FakeLlama

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "recheck"
PARTS, FOLDERS, PER_FOLDER = 10, 100, 1000  # 10 parts x 100 folders x 1,000 files
TEXT = b"A quiet harbour. The boats came home at dusk and the market closed. " * 3
MTIME_NS = 1_700_000_000_123_456_789
RUNS = 3
Pipe = Callable[..., tuple[float, Any, int]]
Report = Callable[[str, dict[str, Any], bool, str], None]


def _folders(tree: Path) -> list[Path]:
    return [tree / f"p{p}" / f"d{d:03}" for p in range(PARTS) for d in range(FOLDERS)]


def _make_files(tree: Path) -> None:
    for folder in _folders(tree):
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(PER_FOLDER):
            path = folder / f"f{i:04}.txt"
            with open(path, "wb") as f:
                f.write(TEXT)
            os.utime(path, ns=(MTIME_NS, MTIME_NS))


def _clone_rows(db: Path, tree: Path) -> None:
    """The first folder's rows, written for every other folder (one transaction)."""
    first, *others = [str(folder) + os.sep for folder in _folders(tree)]
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        items = conn.execute("SELECT * FROM items WHERE path LIKE ?", (first + "%",)).fetchall()
        history = conn.execute("SELECT * FROM history WHERE path LIKE ?", (first + "%",)).fetchall()
        if len(items) != PER_FOLDER or {row[3:8] for row in items} != {items[0][3:8]}:
            sys.exit("recheck: the first folder's rows differ (size, mtime, hash, ask_key, answer)")
        item_cols = [d[1] for d in conn.execute("PRAGMA table_info(items)")]
        hist_cols = [d[1] for d in conn.execute("PRAGMA table_info(history)")]
        at_item, at_hist = item_cols.index("path"), hist_cols.index("path")
        conn.execute("BEGIN")
        for folder in others:
            conn.executemany(
                f"INSERT INTO items VALUES (NULL{', ?' * (len(item_cols) - 1)})",
                [_moved(row, at_item, first, folder)[1:] for row in items],
            )
            conn.executemany(
                f"INSERT INTO history VALUES (NULL{', ?' * (len(hist_cols) - 1)})",
                [_moved(row, at_hist, first, folder)[1:] for row in history],
            )
        scale = len(others) + 1
        conn.execute(
            "UPDATE runs SET done = done * ?, cached = cached * ?, skipped = skipped * ?",
            (scale, scale, scale),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _moved(row: tuple[Any, ...], at: int, first: str, folder: str) -> tuple[Any, ...]:
    return (*row[:at], folder + row[at][len(first) :], *row[at + 1 :])


def _follow(db: Path, tree: Path) -> None:
    """The database keys files by absolute path: a tree moved since it was made (to
    another worktree) has its rows moved along. Rows a run wrote under the new place while
    they pointed elsewhere (it found no finished file there) are dropped first."""
    first = os.sep + os.path.join("p0", "d000", "f0000.txt")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        (path,) = conn.execute("SELECT path FROM items ORDER BY id LIMIT 1").fetchone()
        old, new = path.removesuffix(first) + os.sep, str(tree) + os.sep
        if old == new or not path.endswith(first):
            return
        print(f"recheck: the tree moved; its rows go from {old} to {new}", flush=True)
        conn.execute("BEGIN")
        for table in ("items", "history"):
            where = "WHERE path >= ? AND path < ?"  # below a prefix: [prefix, its successor)
            conn.execute(f"DELETE FROM {table} {where}", _below(new))
            conn.execute(
                f"UPDATE {table} SET path = ? || substr(path, ?) {where}",
                (new, len(old) + 1, *_below(old)),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _below(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def build(pipe: Pipe) -> tuple[Path, dict[str, str]]:
    """The kept tree and its pipe home (made on first use, ~1 minute)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE.resolve()  # the paths in the database are the real ones
    tree, home = cache / "tree", cache / "home"
    env = {"PIPE_HOME": str(home)}
    if (cache / "complete").exists():
        _follow(home / "pipe.db", tree)
        return tree, env
    if not (cache / "files-made").exists():
        shutil.rmtree(tree, ignore_errors=True)
        _make_files(tree)
        (cache / "files-made").write_text("")
    shutil.rmtree(home, ignore_errors=True)
    with FakeLlama(slots=4) as server:
        pipe(
            "run", "summarize-text", str(_folders(tree)[0]), "--backend", server.url, "-q", env=env
        )
    _clone_rows(home / "pipe.db", tree)
    (cache / "complete").write_text("made by bench/recheck.py\n")
    return tree, env


def _recheck(
    pipe: Pipe, folder: Path, env: dict[str, str], files: int
) -> tuple[float, float, float]:
    """Wall and CPU seconds and peak RSS MB of one re-check; it must ask the model nothing.
    (CPU too: on a machine shared with other work, wall time says more about the others.)"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with FakeLlama(slots=4) as server:
        wall, _, rss = pipe(
            "run", "summarize-text", str(folder), "--backend", server.url, "-q", env=env
        )
        calls = server.generate_calls
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    with sqlite3.connect(Path(env["PIPE_HOME"]) / "pipe.db") as conn:
        skipped, done = conn.execute(
            "SELECT skipped, done + cached + failed FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    if calls or done or skipped != files:
        sys.exit(f"recheck: {calls} model calls, {done} done, {skipped} of {files} skipped")
    return wall, cpu, rss / 1024


def bench_recheck(pipe: Pipe, report: Report) -> None:
    tree, env = build(pipe)
    for name, folder, files, budget in (
        ("recheck-100k", tree / "p0", FOLDERS * PER_FOLDER, 3.0),
        ("recheck-1M", tree, PARTS * FOLDERS * PER_FOLDER, 30.0),
    ):
        walls, cpus, peaks = [], [], []
        for _ in range(RUNS):
            wall, cpu, mb = _recheck(pipe, folder, env, files)
            walls.append(round(wall, 2))
            cpus.append(round(cpu, 2))
            peaks.append(round(mb))
        median = statistics.median(walls)
        figures = {
            "s median": median,
            "runs s": walls,
            "cpu s median": statistics.median(cpus),
            "peak RSS MB": max(peaks),
        }
        ok = median <= budget and max(peaks) <= 100
        report(name, figures, ok, f"<= {budget:g} s, <= 100 MB peak RSS, 0 model calls")
