"""The other side of `replacing.py`: settling replacements a killed run left 'planned'
(`resolve`), putting a run's replaced files back byte for byte (`undo`), and freeing the
kept bytes no run still needs (`prune`).

Undo restores a file only where it still holds exactly what pipe wrote (else it is kept,
and said so), through a temporary file renamed over it; a file pipe made is deleted.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.actions.replacing import FileState, copy_hashed, fsync_folder
from pipeline.renaming import moves
from pipeline.renaming.moves import Outcome
from pipeline.results import ActionError

if TYPE_CHECKING:
    from pipeline.store.database import Store
    from pipeline.store.replaced import Replacement

KEPT = "changed since pipe wrote it; kept"


@dataclass(frozen=True)
class Restored:
    """What became of one replacement: resolved, restored or removed, or kept (why)."""

    path: str
    state: str  # applied | abandoned | failed (resolve); undone | failed (undo)
    did: str = ""  # restored | removed (undo)
    reason: str = ""


def _digest(path: str) -> str | None:
    """The file's SHA-256; None when it is gone; "" when it is not a regular file."""
    try:
        state = FileState.of(path)
    except ActionError:
        return ""
    return state.sha256 if state else None


def resolve(store: Store) -> list[Restored]:
    """Settle the replacements of runs killed mid-way, by the digest on disk."""
    out = []
    for row in store.replaced.orphaned():
        if row.temp and os.path.isfile(row.temp) and not os.path.islink(row.temp):
            os.unlink(row.temp)  # never renamed into place: only pipe's half-written copy
        found = _digest(row.path)
        if found == row.new_sha:
            state, reason = "applied", "applied before the interruption"
        elif found == row.old_sha or (found is None and row.old_sha is None):
            state, reason = "abandoned", "not applied before the interruption"
        else:
            state, reason = "failed", "changed by something else since the interruption"
        store.replaced.mark(row.id, state, reason)
        out.append(Restored(row.path, state, reason=reason))
    return out


def undo_one(store: Store, row: Replacement) -> Restored:
    """Put one replaced file back (or remove one pipe made), if it holds what pipe wrote."""
    if _digest(row.path) != row.new_sha:
        return Restored(row.path, "failed", reason=KEPT)
    try:
        if row.old_sha is None:
            os.unlink(row.path)
            fsync_folder(os.path.dirname(row.path))
            did = "removed"
        else:
            _restore(row)
            did = "restored"
    except (OSError, ActionError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return Restored(row.path, "failed", reason=reason)
    store.replaced.mark(row.id, "undone")
    store.outputs.forget_output(row.path)
    return Restored(row.path, "undone", did)


def _restore(row: Replacement) -> None:
    """The kept bytes over the file, through a temporary file beside it (its mode kept)."""
    backup = row.backup or ""
    if row.pruned or not os.path.isfile(backup):
        raise ActionError("its old bytes were pruned; kept")
    st = os.lstat(row.path)
    temp = os.path.join(os.path.dirname(row.path), f".pipe-{secrets.token_hex(8)}.tmp")
    try:
        if copy_hashed(backup, temp) != row.old_sha:
            raise ActionError("its kept bytes are damaged; kept")
        os.chmod(temp, stat.S_IMODE(st.st_mode))  # as the file is now (not the umask's)
        now = os.lstat(row.path)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
            raise ActionError(KEPT)
        os.replace(temp, row.path)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    fsync_folder(os.path.dirname(row.path))


def undo_run(store: Store, run_id: int) -> list[Outcome | Restored]:
    """A run's renames and replaced files put back together. Journal paths are absolute, so
    the order follows where each file was: a file rewritten under the name a rename gave
    it is restored first (then renamed back); the renames next, newest first; then the
    files rewritten under a name they had before the run renamed them (or never renamed)."""
    renames = store.journal.applied(run_id)
    renamed_to = {new: rename_id for rename_id, _, new, _ in renames}
    replaced = store.replaced.applied(run_id)
    outcomes: list[Outcome | Restored] = []
    for row in replaced:
        if row.path in renamed_to:
            outcome = undo_one(store, row)
            if outcome.did == "restored":  # the bytes pipe renamed are back, in a new inode
                store.journal.reidentify(renamed_to[row.path], moves.identity(row.path))
            outcomes.append(outcome)
    renames = store.journal.applied(run_id)  # as reidentified
    outcomes += [moves.undo_move(store, *rename) for rename in renames]
    outcomes += [undo_one(store, row) for row in replaced if row.path not in renamed_to]
    return outcomes


def prune(store: Store, run_ids: list[int]) -> int:
    """Forget the kept bytes of these runs (they can no longer be undone) and delete each
    backup no other run needs, and copies a killed run left half-made; the bytes freed."""
    freed = _half_made(store.replaced.folder)
    for sha in sorted(store.replaced.prune(run_ids)):
        if store.replaced.referenced(sha):
            continue
        path = store.replaced.backup_path(sha)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed


def _half_made(folder: Path) -> int:
    """Delete the temporary copies of kept bytes that a killed run left (an hour old: a
    running one may be writing one now); their size."""
    freed = 0
    for temp in folder.glob(".tmp-*") if folder.is_dir() else ():
        try:
            st = temp.lstat()
            if time.time() - st.st_mtime > 3600:
                temp.unlink()
                freed += st.st_size
        except FileNotFoundError:
            continue
    return freed
