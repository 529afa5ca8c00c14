"""pipeline.store: claims between runs, migrations, per-thread reads, a new database twice."""

from __future__ import annotations

from pathlib import Path

from pipeline.store.database import Counts, Store


def test_claims_keep_two_runs_apart(tmp_path: Path) -> None:
    """Runs with the same recipe settings (`k`); a run with other settings is not kept out."""
    a, b = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    run_a = a.start_run("r", "built-in", [], "u", "m")
    run_b = b.start_run("r", "built-in", [], "u", "m")
    assert a.claim("r", "/f", run_a, 1, 1, "k", False)[0] == "claimed"
    assert b.claim("r", "/f", run_b, 1, 1, "other settings", False)[0] == "claimed"
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "busy"
    a.end_run(run_a, "interrupted", 130, Counts())
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "claimed"  # released on end


def test_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    dead = store.start_run("r", "built-in", [], "u", "m")
    store.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (dead,))
    store.claim("r", "/f", dead, 1, 1, "k", False)
    fresh = Store(tmp_path / "s.db")
    mine = fresh.start_run("r", "built-in", [], "u", "m")
    assert fresh.claim("r", "/f", mine, 1, 1, "k", False)[0] == "claimed"


def test_migrations_run_once(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    store = Store(tmp_path / "s.db")
    assert [r[0] for r in store.conn.execute("SELECT name FROM _migrations")] == [
        "001_initial",
        "002_renames",
        "003_history_meta",
        "004_pictures",
        "005_run_backends",
        "006_output_size",
        "007_run_written_dry_run",
        "008_claims",
        "009_started_models",
        "010_bench",
        "011_replaced",
        "012_search",
    ]
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_worker_threads_read_through_their_own_connection(tmp_path: Path) -> None:
    """A run that stops early closes the store while workers may be mid-query; on a shared
    connection that crashed the process, so a worker's reads must outlive the close."""
    import threading

    store = Store(tmp_path / "s.db")
    answers: list[str | None] = []
    closed = threading.Event()

    def worker() -> None:
        answers.append(store.cached_answer("nothing"))
        closed.wait()
        answers.append(store.cached_answer("nothing"))

    thread = threading.Thread(target=worker)
    thread.start()
    store.close()
    closed.set()
    thread.join()
    assert answers == [None, None]


def test_a_new_database_opens_while_another_process_holds_it(tmp_path: Path) -> None:
    """Two cron runs creating the same database at once: the second waits, never fails with
    'database is locked' (SQLite does not retry switching to WAL by itself)."""
    import sqlite3
    import threading

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # as a first run does while it creates the tables
    holder.execute("CREATE TABLE first (x)")
    threading.Timer(0.3, holder.commit).start()
    store = Store(path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    holder.close()
