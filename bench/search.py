"""Benchmarks: `pipe search` (issue #18, part 4).

  search-1M     1,000,000 varied answers indexed; typical queries through the library
                function the CLI uses (store.search.search), median and worst of several;
                `pipe search` as a process too, interpreter start-up shown apart.
                target: a query answers in <= 50 ms
  search-cost   an instant fake server, 3,000 small text files with paragraph answers:
                files/s with the index's triggers and without them (dropped in a copy of
                the same database). target: indexing costs <= 10% of the throughput

The 1M database is made once (~minutes) through the store's own write statements, in bulk
transactions, and kept in bench/results/search/.
"""

from __future__ import annotations

import itertools
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.store.answer_cache import AnswerCache
from pipeline.store.database import Store
from pipeline.store.schema import SEARCH_TRIGGERS
from pipeline.store.search import Where, _conditions, flush
from tests.fakes.llama import FakeLlama

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "results" / "search"
ANSWERS, BATCH, FOLDERS = 1_000_000, 20_000, 1000
FILES, RUNS = 3000, 5  # the cost bench: files a run, runs each way
RECIPES = ("describe-images", "summarize-text", "tag-images", "rename-images")
Pipe = Callable[..., tuple[float, Any, int]]
Report = Callable[[str, dict[str, Any], bool, str], None]


# Words as captions and summaries use them: a few very common, most rare (a Zipf-like draw).
def _words(text: str, sep: str = " ") -> tuple[str, ...]:
    return tuple(text.split(sep))


SUBJECTS = _words(
    "dog cat child woman man boat car bicycle tree house bridge tower church market street"
    " beach harbour river lake mountain hill forest garden field road train bird horse cow"
    " sheep table window door kitchen sofa book letter invoice report meeting recipe cake"
    " lighthouse castle cathedral windmill tractor kayak surfer skier tent campfire owl fox"
)
ADJECTIVES = _words(
    "red blue green yellow old new small large quiet busy bright dark wet snowy sunny misty"
    " wooden stone rusty golden empty crowded narrow wide tall ancient modern cosy cold warm"
)
PLACES = _words(
    "by the sea|in the mountains|at dusk|at dawn|in winter|in summer|under a cloudy sky"
    "|at sunset|in the rain|in the old town|near the station|on a beach|in a park"
    "|at the market|in a kitchen|in an office|on a farm|by a lake|in the snow",
    "|",
)
# Zipf's law: the k-th most common subject is used 1/k as often as the first.
ZIPF = list(itertools.accumulate(1 / (k + 1) for k in range(len(SUBJECTS))))
RARE = [f"{a}{b}" for a in ("zan", "mor", "kel", "tib", "vos", "rul") for b in range(400)]


def _answer(rng: random.Random) -> str:
    """A caption or a summary of 20 to 60 words, like a small model's."""
    sentences = []
    for _ in range(rng.randint(2, 5)):
        subject, other = rng.choices(SUBJECTS, cum_weights=ZIPF)[0], rng.choice(SUBJECTS)
        adjective = rng.choice(ADJECTIVES)
        sentences.append(
            f"A {adjective} {subject} {rng.choice(PLACES)}, with a {other} nearby"
            f"{' and ' + rng.choice(RARE) if rng.random() < 0.3 else ''}."
        )
    return " ".join(sentences)


def _batches(rng: random.Random, root: str) -> Iterator[tuple[list[dict[str, Any]], list[tuple]]]:
    for start in range(0, ANSWERS, BATCH):
        cache_rows, items = [], []
        for n in range(start, start + BATCH):
            fingerprint = f"{n:016x}"
            cache_rows.append(
                {"fingerprint": fingerprint, "step": "ask", "answer": _answer(rng), "model": "m",
                 "prompt_tokens": 100, "completion_tokens": 40, "duration_ms": 900}
            )  # fmt: skip
            path = f"{root}/d{n % FOLDERS:04}/f{n:07}.jpg"
            items.append((RECIPES[n % len(RECIPES)], path, fingerprint, f"2026-{1 + n % 12:02}-01"))
        yield cache_rows, items


def build() -> Path:
    """The kept 1M-answer database (made on first use). Paths are under a folder that does
    not exist, so the bench makes the few files the shown hits need (see _touch)."""
    db = CACHE / "search.db"
    if (CACHE / "complete").exists():
        return db
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    store = Store(db)
    run_id = store.start_run("describe-images", "built-in", [], "u", "m")
    started = time.perf_counter()
    for cache_rows, items in _batches(random.Random(18), str(CACHE / "tree")):
        with store.transaction() as c:
            AnswerCache.insert(c, cache_rows)  # the store's statement, triggers and all
            c.executemany(
                "INSERT INTO items (recipe, path, size, mtime_ns, fingerprint, status,"
                " attempts, run_id, updated) VALUES (?, ?, 1, 1, ?, 'done', 1, ?, ?)",
                [(r, p, f, run_id, u) for r, p, f, u in items],
            )
            flush(c)  # the queued documents, as a run adds them (in larger batches here)
    store.close()
    seconds = time.perf_counter() - started
    (CACHE / "complete").write_text(f"made by bench/search.py in {seconds:.0f} s\n")
    return db


def _touch(store: Store, queries: list[tuple[str, Where]]) -> None:
    """Hits are files that exist: make every file a query could show (its best 200)."""
    for query, where in queries:
        for row in itertools.islice(store.search._ranked(*_conditions(query, where)), 200):
            path = row[3]
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Path(path).touch()


def _timed(
    store: Store, query: str, where: Where, runs: int = 7
) -> tuple[float, float, float, int]:
    """Median and worst wall ms, median CPU ms (the machine is shared: CPU time says what
    the search itself costs), and the hits."""
    walls, cpus, hits = [], [], 0
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        hits = len(store.search.search(query, where, 20))
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), max(walls), statistics.median(cpus), hits


QUERIES = [
    ("lighthouse", Where()),
    ("dog beach", Where()),
    ('"red boat"', Where()),
    ("castle snow", Where(recipe="describe-images")),
    ("kel17*", Where()),
    ("sunset", Where(under=str(CACHE / "tree" / "d0042"))),
    ("owl OR fox", Where(since="2026-11-01")),
    ("dog", Where()),  # the most common subject: ~1 answer in 3 mentions a dog
]


def bench_search(report: Report) -> None:
    db = build()
    store = Store(db)
    try:
        _touch(store, QUERIES)
        matches = {
            q: store.conn.execute(
                "SELECT count(*) FROM search_index WHERE search_index MATCH ?", (q,)
            ).fetchone()[0]
            for q, _ in QUERIES
        }
        figures: dict[str, Any] = {}
        worst = 0.0
        for query, where in QUERIES:
            median, most, cpu, hits = _timed(store, query, where)
            label = query + (" (filtered)" if where != Where() else "")
            figures[label] = (
                f"{median:.1f}/{most:.1f} ms (cpu {cpu:.1f}), {matches[query]} matches, {hits} hits"
            )
            worst = max(worst, median)
    finally:
        store.close()
    figures.update(_process_figures(db))
    report("search-1M", figures, worst <= 50, "each query's median <= 50 ms (median/worst of 7)")


def _process_figures(db: Path) -> dict[str, Any]:
    """`pipe search` as a user runs it: wall time, and a bare interpreter's for scale."""

    def wall(*args: str) -> float:
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, cwd=ROOT, check=False)
        return time.perf_counter() - started

    command = (sys.executable, "-m", "pipeline", "search", "--db", str(db), "dog", "beach")
    pipe_s = statistics.median(wall(*command) for _ in range(5))
    bare_s = statistics.median(wall(sys.executable, "-c", "pass") for _ in range(5))
    return {"pipe search wall ms": round(pipe_s * 1000), "python -c pass ms": round(bare_s * 1000)}


def _paragraph(prompt: str) -> str:
    """A paragraph answer (~60 words) that differs per file, as a summary would."""
    rng = random.Random(prompt)
    return " ".join(_answer(rng) for _ in range(2))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_cost(pipe: Pipe, make_tree: Callable[..., Path], tmp: Path, report: Report) -> None:
    tree = make_tree(tmp / "search-cost", FILES)
    template = tmp / "search-cost-template.db"
    Store(template).close()  # migrated: pipe will not run 012_search again on a copy
    kinds = ("indexed", "not indexed")
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu_rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    with FakeLlama(slots=4, answer=_paragraph) as server:
        for i in range(RUNS):  # alternated, so the machine's drift hits both alike
            for kind in kinds:
                home = tmp / f"home-search-cost-{kind.replace(' ', '-')}-{i}"
                home.mkdir()
                shutil.copy(template, home / "pipe.db")
                if kind == "not indexed":
                    store = Store(home / "pipe.db")
                    for name in SEARCH_TRIGGERS:
                        store.conn.execute(f"DROP TRIGGER {name}")
                    store.close()
                args = ("run", "summarize-text", str(tree), "--backend", server.url, "-q")
                cpu = _cpu()
                wall, _, _ = pipe(*args, env={"PIPE_HOME": str(home)})
                rates[kind].append(FILES / wall)
                cpu_rates[kind].append(FILES / (_cpu() - cpu))
    indexed, plain = (statistics.median(rates[k]) for k in kinds)
    cpu_indexed, cpu_plain = (statistics.median(cpu_rates[k]) for k in kinds)
    cost, cpu_cost = 1 - indexed / plain, 1 - cpu_indexed / cpu_plain
    figures = {
        "files/s indexed": round(indexed),
        "not indexed": round(plain),
        "cost": f"{cost:.1%}",
        "runs indexed": [round(r) for r in rates["indexed"]],
        "not indexed runs": [round(r) for r in rates["not indexed"]],
        "files per CPU s indexed": round(cpu_indexed),
        "not indexed ": round(cpu_plain),
        "CPU cost": f"{cpu_cost:.1%}",
    }
    report("search-cost", figures, cost <= 0.10, "indexing costs <= 10% of files/s")
