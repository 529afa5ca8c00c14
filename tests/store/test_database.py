"""The database at the edges: a file that is not pipe's, damaged, read-only, from a newer pipe
or on a full disk gives one line and exit 2, never a traceback, and is never changed; two
runs at once share the database without losing files."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store.database import Counts, Store
from tests.conftest import ROOT, pipe_cmd, run_pipe, wait_for
from tests.fakes.llama import FakeLlama, default_answer


def one_error_line(r: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2 and exactly one line on stderr, naming what is wrong; no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "sqlite3" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def commands(db: Path, llama: FakeLlama, notes: Path) -> list[tuple[str, ...]]:
    """Every command that opens the database."""
    return [
        ("run", "summarize-text", str(notes), "--backend", llama.url, "-q", "--db", str(db)),
        ("runs", "--db", str(db)),
        ("show", str(notes / "note1.md"), "--db", str(db)),
        ("undo", "--db", str(db)),
    ]


@pytest.fixture
def pipe_db(tmp_path: Path, llama: FakeLlama, notes: Path) -> Path:
    """A real pipe database with one finished run in it."""
    db = tmp_path / "pipe.db"
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--db", str(db))
    assert r.returncode == 0, r.stderr
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    return db


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(
    tmp_path: Path, llama: FakeLlama, notes: Path
) -> None:
    db = tmp_path / "photos.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO albums (name) VALUES ('summer')")
        c.commit()
    before = db.read_bytes()
    for args in commands(db, llama, notes):
        line = one_error_line(run_pipe(*args), str(db), "not a pipe database", "--db")
        assert "albums" in line
        assert db.read_bytes() == before, args
    assert llama.generate_calls == 0


def test_a_new_or_empty_file_becomes_a_pipe_database(
    tmp_path: Path, llama: FakeLlama, notes: Path
) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert run_pipe("runs", "--db", str(db)).returncode == 0


@pytest.mark.parametrize("cut", [50, 4096, "half"])
def test_a_truncated_database(pipe_db: Path, llama: FakeLlama, notes: Path, cut: int | str) -> None:
    data = pipe_db.read_bytes()
    pipe_db.write_bytes(data[: len(data) // 2 if cut == "half" else cut])
    before = pipe_db.read_bytes()
    for args in commands(pipe_db, llama, notes):
        one_error_line(run_pipe(*args), str(pipe_db), "damaged", "move it aside")
        assert pipe_db.read_bytes() == before, args


def test_garbage_in_the_header(pipe_db: Path, llama: FakeLlama, notes: Path) -> None:
    data = bytearray(pipe_db.read_bytes())
    data[0:16] = b"\x00garbage header!"
    pipe_db.write_bytes(bytes(data))
    for args in commands(pipe_db, llama, notes):
        one_error_line(run_pipe(*args), str(pipe_db), "not a SQLite database")
        assert pipe_db.read_bytes() == bytes(data), args


def test_a_database_written_by_a_newer_pipe(pipe_db: Path, llama: FakeLlama, notes: Path) -> None:
    with contextlib.closing(sqlite3.connect(pipe_db)) as c:
        c.execute("INSERT INTO _migrations VALUES ('999_from_the_future', '2099-01-01')")
        c.commit()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = pipe_db.read_bytes()
    for args in commands(pipe_db, llama, notes):
        one_error_line(run_pipe(*args), str(pipe_db), "newer pipe", "999_from_the_future")
        assert pipe_db.read_bytes() == before, args
    assert llama.generate_calls == 3  # the first run's, none since


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable even for root (the immutable attribute), else by its mode."""
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)]).returncode:
            pytest.skip("running as root and chattr +i is not available to make a file read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_read_only_database(pipe_db: Path, llama: FakeLlama, notes: Path) -> None:
    (notes / "note4.md").write_text("A new note for the read-only run.\n")
    before = pipe_db.read_bytes()
    with read_only(pipe_db):
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", llama.url, "-q", "--db", str(pipe_db)
        )
        one_error_line(r, str(pipe_db), "read-only", "--db")
        # Reading it still works.
        assert run_pipe("runs", "--db", str(pipe_db)).returncode == 0
    assert pipe_db.read_bytes() == before


def test_a_database_in_a_folder_that_cannot_be_written(
    tmp_path: Path, llama: FakeLlama, notes: Path
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            llama.url,
            "-q",
            "--db",
            str(folder / "pipe.db"),
        )
        one_error_line(r, str(folder / "pipe.db"), "cannot")
    assert not (folder / "pipe.db").exists()


@contextlib.contextmanager
def small_disk(where: Path, size: str = "1m") -> Iterator[Path]:
    """A tiny filesystem of its own (tmpfs), so filling it fills nothing else."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr!r}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


def test_a_full_disk_mid_run_ends_in_one_line_and_the_run_is_not_left_running(
    tmp_path: Path, notes: Path
) -> None:
    gate = threading.Event()

    def held(prompt: str) -> str:
        gate.wait(60)
        return default_answer(prompt)

    with small_disk(tmp_path / "disk") as disk, FakeLlama(slots=1, answer=held) as llama:
        db = disk / "pipe.db"
        cmd = pipe_cmd(
            "run", "summarize-text", str(notes), "--backend", llama.url, "-q", "--db", str(db)
        )
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: llama.active == 1, what="the run's first question")
            filler = fill(disk)
            gate.set()
            out, err = proc.communicate(timeout=60)
        finally:
            gate.set()
            if proc.poll() is None:
                proc.kill()
        r = subprocess.CompletedProcess(cmd, proc.returncode, out.decode(), err.decode())
        one_error_line(r, str(db), "full", "free")
        filler.unlink()
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", llama.url, "-q", "--db", str(db)
        )
        assert r.returncode == 0, r.stderr
        with contextlib.closing(sqlite3.connect(db)) as c:
            statuses = dict(c.execute("SELECT id, status FROM runs"))
    assert statuses[1] != "running" and statuses[2] == "done", statuses


def test_a_run_that_died_is_marked_so_by_the_next(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    dead = store.start_run("r", "built-in", [], "u", "m")
    store.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (dead,))
    alive = store.start_run("r", "built-in", [], "u", "m")
    store.end_run(alive, "done", 0, Counts())
    status = dict(store.conn.execute("SELECT id, status FROM runs"))
    assert status == {dead: "died", alive: "done"}


# -- two runs at once --------------------------------------------------------------------


def many_files(tmp_path: Path, n: int = 30) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(n):
        (folder / f"f{i:02}.txt").write_text(f"File {i}\n")
    return folder


def two_runs_at_once(
    llama: FakeLlama, gate: threading.Event, *extras: tuple[str, ...]
) -> tuple[list[int], list[tuple[bytes, bytes]]]:
    """Two `pipe run summarize-text` at once (the same folder's files, with `extras` each),
    held until both have claimed files and wait on answers: their claims overlap. Their
    exit codes and (stdout, stderr)."""
    procs = [
        subprocess.Popen(
            pipe_cmd("run", "summarize-text", "--backend", llama.url, "-j", "2", *extra),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for extra in extras
    ]
    try:
        wait_for(lambda: llama.active == 4, what="two questions in flight from each run")
    finally:
        gate.set()
    outs = [p.communicate(timeout=120) for p in procs]
    return [p.returncode for p in procs], outs


def held_llama() -> tuple[FakeLlama, threading.Event]:
    """A fake whose answers wait for the event."""
    gate = threading.Event()

    def held(prompt: str) -> str:
        gate.wait(60)
        return default_answer(prompt)

    return FakeLlama(slots=4, answer=held), gate


def test_two_runs_with_different_recipes_at_once_each_do_every_file(tmp_path: Path) -> None:
    folder = many_files(tmp_path)
    fake, gate = held_llama()
    with fake as llama:
        sidecars = (str(folder), "--write", "sidecar")
        shorter = (str(folder), "--set", "ask.max_tokens=100", "--json")
        codes, outs = two_runs_at_once(llama, gate, sidecars, shorter)
    assert codes == [0, 0], outs
    assert len(list(folder.glob("*.summary.txt"))) == 30, outs[0][1].decode()
    assert outs[1][0].decode().count('"answer"') == 30
    assert b"another run" not in outs[0][1] + outs[1][1]


def test_a_file_left_to_another_run_of_the_same_recipe_is_reported(tmp_path: Path) -> None:
    folder = many_files(tmp_path)
    fake, gate = held_llama()
    with fake as llama:
        same = (str(folder), "--write", "sidecar", "-v")
        codes, outs = two_runs_at_once(llama, gate, same, same)
    errs = [err.decode() for _, err in outs]
    assert codes == [0, 0], errs
    assert max(llama.prompts.values()) == 1  # no file asked twice
    assert len(list(folder.glob("*.summary.txt"))) == 30
    left = 0
    for err in errs:
        notes = [line for line in err.splitlines() if "skipped: another run" in line]
        summary = re.search(r"(\d+) left to another run", err)
        assert len(notes) == (int(summary.group(1)) if summary else 0), err
        left += len(notes)
    assert left > 0, errs
