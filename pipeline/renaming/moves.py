"""Renaming people's files without ever losing or overwriting one.

Every rename is written to the journal (the `renames` table) before it happens, applied one
at a time without clobbering (a hard link to the new name, then unlinking the old; where
links are impossible, Linux's renameat2(RENAME_NOREPLACE)), and marked applied. A run killed
at any instant leaves a journal that `reconcile` completes or abandons by looking at the
disk: the file's identity (device, inode, size, mtime) was recorded when it was planned.
`undo_move` puts one back with the same care (`actions/restoring.undo_run` walks a run's
renames backwards, with its replaced files).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.store.database import Store

# Called between the protocol's steps (journaled / linked / unlinked / marked); None in use.
# Crash tests install a sleep here (tests/fakes/pausing_cli.py) to widen every window so
# that a SIGKILL at a random instant lands inside one.
between_steps: Callable[[], None] | None = None

# Errors from os.link that mean "this file system has no hard links", not "no".
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
_RENAME_NOREPLACE = 1


@dataclass(frozen=True)
class Move:
    old: str
    new: str
    group: int = 0  # a photo and its companions share a group; the photo comes first
    companion: bool = False


@dataclass(frozen=True)
class Outcome:
    old: str
    new: str
    state: str  # applied | undone | failed | abandoned | skipped
    reason: str = ""
    companion: bool = False


def _pause() -> None:
    if between_steps is not None:
        between_steps()


def identity(path: str) -> tuple[int, int, int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def rename_no_clobber(old: str, new: str) -> None:
    """Move `old` to `new`; FileExistsError if `new` exists. Never replaces a file."""
    try:
        os.link(old, new, follow_symlinks=False)
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
        _renameat2_noreplace(old, new)
        return
    _pause()
    try:
        os.unlink(old)
    except OSError:
        os.unlink(new)  # leave things as they were: the old name is still there
        raise


def _renameat2_noreplace(old: str, new: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        raise OSError(errno.ENOTSUP, "this file system cannot rename without overwriting")
    at_fdcwd = -100
    if func(at_fdcwd, os.fsencode(old), at_fdcwd, os.fsencode(new), _RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), new)


def apply(store: Store, run_id: int, moves: list[Move]) -> list[Outcome]:
    """Journal every move, then apply them one by one; companions follow their photo."""
    journal = store.journal
    planned = [identity(m.old) for m in moves]
    ids = journal.write_plan(run_id, list(zip(moves, planned, strict=True)))
    outcomes: list[Outcome] = []
    failed_groups: set[int] = set()
    for move, rename_id, before in zip(moves, ids, planned, strict=True):
        if move.group in failed_groups:
            journal.mark(rename_id, "abandoned", "its photo was not renamed")
            outcomes.append(Outcome(move.old, move.new, "skipped", "photo not renamed", True))
            continue
        try:
            if identity(move.old) != before:
                raise OSError(errno.ESTALE, "the file changed since the plan was made")
            _pause()
            rename_no_clobber(move.old, move.new)
            _pause()
        except OSError as e:
            reason = "the new name is taken" if isinstance(e, FileExistsError) else e.strerror
            journal.mark(rename_id, "failed", reason)
            outcomes.append(Outcome(move.old, move.new, "failed", reason or str(e), move.companion))
            if not move.companion:
                failed_groups.add(move.group)
            continue
        journal.mark(rename_id, "applied")
        outcomes.append(Outcome(move.old, move.new, "applied", companion=move.companion))
    return outcomes


def reconcile(store: Store) -> list[Outcome]:
    """Finish or abandon renames that a dead run left as planned."""
    journal = store.journal
    outcomes = []
    for row in journal.orphaned():
        rename_id, old, new, planned = row
        state, reason = _settle(old, new, planned)
        journal.mark(rename_id, state, reason)
        outcomes.append(Outcome(old, new, state, reason))
    return outcomes


def _settle(old: str, new: str, planned: tuple[int, int, int, int]) -> tuple[str, str]:
    dev_ino = planned[:2]
    old_there, new_there = os.path.lexists(old), os.path.lexists(new)
    if old_there and new_there:
        if identity(old)[:2] == dev_ino and identity(new)[:2] == dev_ino:
            os.unlink(old)  # killed between link and unlink: finish it
            return "applied", "completed after an interruption"
        return "abandoned", "not applied before the interruption"
    if new_there and identity(new)[:2] == dev_ino:
        return "applied", "applied before the interruption"
    if old_there:
        return "abandoned", "not applied before the interruption"
    return "failed", "neither name exists any more (moved or deleted by someone else)"


def undo_move(
    store: Store, rename_id: int, old: str, new: str, planned: tuple[int, int, int, int]
) -> Outcome:
    """Put one applied rename back, if the file is still the one pipe renamed."""
    if not os.path.lexists(new):
        reason = f"{new} is gone"
    elif identity(new)[:2] != planned[:2]:
        reason = f"{new} is now a different file"
    elif identity(new)[2:] != planned[2:]:
        reason = f"{new} was changed after the rename"
    elif os.path.lexists(old):
        reason = f"{old} is taken by another file"
    else:
        try:
            rename_no_clobber(new, old)
        except OSError as e:
            reason = e.strerror or str(e)
        else:
            store.journal.mark(rename_id, "undone")
            store.journal.reopen(old, new)  # a later run may name it again
            return Outcome(new, old, "undone")
    return Outcome(new, old, "failed", reason)
