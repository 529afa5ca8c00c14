"""What can be wrong with the database file, said in one line with what to do about it:
another program's SQLite file, one from a newer pipe, damaged, read-only or on a full disk.
pipe never adds its tables to a file that is not its own."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import DatabaseError

ELSEWHERE = "or give pipe another file with --db or PIPE_DB"


def check_is_pipes(conn: sqlite3.Connection, path: Path | str, known: Iterable[str]) -> list[str]:
    """Refuse, before anything is written, a file pipe must not touch: one with tables and
    no pipe migrations (another program's), or one with migrations this pipe does not know
    (written by a newer pipe). An empty or new file is pipe's to set up. Returns the
    migrations the file has had."""
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name LIMIT 50"
        )
    ]
    if not tables:
        return []
    applied: list[str] = []
    if "_migrations" in tables:
        applied = [str(row[0]) for row in conn.execute("SELECT name FROM _migrations")]
    if "001_initial" not in applied:
        shown = ", ".join(_short(name) for name in tables[:3])
        raise DatabaseError(
            f"{path} is not a pipe database: it holds another program's tables ({shown});"
            f" pipe leaves it alone. Give pipe its own file with --db or PIPE_DB"
        )
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise DatabaseError(
            f"{path} was written by a newer pipe (schema change {_short(unknown[-1])} is"
            f" unknown to this one): upgrade pipe, {ELSEWHERE}"
        )
    return applied


def explain(error: BaseException, path: Path | str | None) -> DatabaseError:
    """The one line for an error SQLite (or the file system) gave about the database."""
    where = str(path) if path else "the database"
    name = str(getattr(error, "sqlite_errorname", "") or "")
    code = error.errno if isinstance(error, OSError) else None
    if name.startswith("SQLITE_FULL") or code == errno.ENOSPC:
        message = f"the disk holding {where} is full: free some space and run again"
    elif name.startswith("SQLITE_READONLY") or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        message = f"{where} is read-only: make it and its folder writable, {ELSEWHERE}"
    elif name.startswith("SQLITE_CANTOPEN") or isinstance(error, OSError):
        message = (
            f"cannot open or create {where}: check that its folder exists and is writable,"
            f" {ELSEWHERE}"
        )
    elif name.startswith("SQLITE_NOTADB"):
        message = (
            f"{where} is not a SQLite database (or its header is damaged): move it aside to"
            f" start a new one, {ELSEWHERE}"
        )
    elif name.startswith("SQLITE_CORRUPT"):
        message = (
            f"{where} is damaged ({error}): move it aside to start a new one (its cached"
            f" answers are lost) or put back a backup"
        )
    elif name.startswith("SQLITE_IOERR"):
        message = f"cannot read or write {where} ({error}): check the disk and its free space"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        message = f"{where} is locked by another program: run again when it is done"
    else:
        message = f"{where}: {error}"
    return DatabaseError(message)


def _short(name: str) -> str:
    """A table or migration name from a file pipe did not write: bounded."""
    return name if len(name) <= 40 else name[:39] + "…"
