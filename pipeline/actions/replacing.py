"""Replacing a file people own (a sidecar pipe merged into, a photo with its metadata
written in) so that it can be undone byte for byte and a SIGKILL at any instant leaves the
old file or the new one, never a broken one.

The protocol of `replace_journaled`: check the file is still what the caller read
(`expected`); keep its old bytes once per sha256 in pipe's data folder (temp, fsync,
rename); journal the replacement as 'planned' (store/replaced.py); write the new bytes to a
temporary file beside the target and fsync it; `os.replace` it over the target, keeping
the target's permissions; fsync the folder; mark the row 'applied'. A run killed between
any two steps leaves a 'planned' row that `restoring.resolve` (the next run, `pipe undo`)
settles by looking at the file's digest: the new one means applied, the old one abandoned.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.results import ActionError

if TYPE_CHECKING:
    from pipeline.store.database import Store

# Called between the protocol's steps; None in use. Crash tests install a sleep here
# (tests/fakes/pausing_cli.py) so that a SIGKILL at a random instant lands inside a window.
between_steps: Callable[[], None] | None = None

CHUNK = 1 << 20
CHANGED = "changed since pipe read it; not replacing it"


@dataclass(frozen=True)
class FileState:
    """A regular file as pipe read it: what `replace_journaled` checks is still there."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: str) -> FileState | None:
        """The file's state, its bytes hashed a chunk at a time; None when nothing is
        there. Anything but a regular file (a link, a folder, a FIFO) raises ActionError."""
        st = _regular(path)
        if st is None:
            return None
        with open(path, "rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
            after = os.fstat(f.fileno())
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise ActionError(f"{path} changed while pipe read it; not replacing it")
        return cls(st.st_size, st.st_mtime_ns, sha)

    @classmethod
    def read(cls, path: str, limit: int) -> tuple[bytes, FileState] | None:
        """The file's bytes (at most `limit`, else ActionError) and its state; None when
        nothing is there. Opened without blocking, so a FIFO swapped in never hangs."""
        if _regular(path) is None:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ActionError(f"{path} is not a regular file; not replacing it")
            if st.st_size > limit:
                raise ActionError(f"{path} is over {limit >> 20} MiB; not replacing it")
            data = f.read(limit + 1)
        if len(data) != st.st_size:
            raise ActionError(f"{path} changed while pipe read it; not replacing it")
        return data, cls(st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())


def replace_journaled(
    store: Store,
    run_id: int,
    target: str,
    new: bytes | str,
    *,
    expected: FileState | None,
    kind: str,
    recipe: str | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Replace `target` by `new` (bytes, or the path of a finished temporary file in the
    same folder, renamed into place), journaled so that `pipe undo` restores the old bytes.
    `expected`: the target as the caller read it (None: no file). Nothing is written when
    the target already holds the new bytes (a temporary file given is then removed; when
    pipe refuses, ActionError, it is left to the caller). `fields` (JSON-able): what pipe
    wrote, kept in the journal so a later write can replace pipe's own values."""
    target = os.path.abspath(target)
    temp: str | None = None
    try:
        current = _check(target, expected)
        if isinstance(new, str):
            temp = _given_temp(target, new)
            new_state = FileState.of(temp)
            assert new_state is not None  # _given_temp checked it is a file
            new_id = (new_state.sha256, new_state.size)
        else:
            new_id = (hashlib.sha256(new).hexdigest(), len(new))
        if expected is not None and new_id[0] == expected.sha256:
            if temp is not None:
                os.unlink(temp)
            return
        old = None
        if expected is not None:
            _keep(store.replaced.backup_path(expected.sha256), target, expected)
            old = (expected.sha256, expected.size)
        if temp is None:
            temp = os.path.join(os.path.dirname(target), f".pipe-{secrets.token_hex(8)}.tmp")
        row = store.replaced.plan(
            run_id, target, old, new_id, kind=kind, temp=temp, recipe=recipe, fields=fields
        )
    except OSError as e:
        _discard(temp, new)
        raise ActionError(f"{target}: {e.strerror or e}") from None
    except ActionError:
        _discard(temp, new)
        raise
    try:
        _swap(target, temp, new, current, expected)
    except (OSError, ActionError) as e:
        _discard(temp, new)
        store.replaced.mark(row, "abandoned", str(e))
        if isinstance(e, ActionError):
            raise
        raise ActionError(f"{target}: {e.strerror or e}") from None
    store.replaced.mark(row, "applied")


def _swap(
    target: str, temp: str, new: bytes | str, current: int | None, expected: FileState | None
) -> None:
    """Write (or take) the temporary file, fsync it, rename it over the target, fsync the
    folder; the target's mode is kept (`current`), a new file gets the user's umask."""
    _pause()
    if isinstance(new, bytes):
        # Not mkstemp: its 0600 would hide the file from the user's group and other tools.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "wb") as f:
            if current is not None:
                os.fchmod(f.fileno(), current)
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
    else:
        fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if current is not None:
                os.fchmod(fd, current)
            os.fsync(fd)
        finally:
            os.close(fd)
    _pause()
    if _check(target, expected) != current:  # the narrowest window left: just before
        raise ActionError(f"{target} {CHANGED}")
    os.replace(temp, target)
    _pause()
    fsync_folder(os.path.dirname(target))
    _pause()


def _check(target: str, expected: FileState | None) -> int | None:
    """Raise unless the target is as the caller read it (size and mtime here; the digest
    while its bytes are kept); its permission bits, None when there is no file."""
    st = _regular(target)
    if st is None and expected is None:
        return None
    if (
        st is None
        or expected is None
        or (st.st_size, st.st_mtime_ns)
        != (
            expected.size,
            expected.mtime_ns,
        )
    ):
        raise ActionError(f"{target} {CHANGED}")
    return stat.S_IMODE(st.st_mode)


def _given_temp(target: str, temp: str) -> str:
    temp = os.path.abspath(temp)
    if os.path.dirname(temp) != os.path.dirname(target):
        raise ActionError(f"{temp} is not in the folder of {target}; not renaming it there")
    if _regular(temp) is None:
        raise ActionError(f"{temp} is missing; nothing to put in place of {target}")
    return temp


def _keep(backup: Path, target: str, expected: FileState) -> None:
    """Copy the target's bytes to `backup` (temp, fsync, rename), checking they are the
    ones the caller read; kept once however many files held them."""
    try:
        if backup.stat().st_size == expected.size:
            _verify_unchanged(target, expected)
            return
    except FileNotFoundError:
        pass
    backup.parent.mkdir(parents=True, exist_ok=True)
    temp = backup.parent / f".tmp-{secrets.token_hex(8)}"
    try:
        digest = copy_hashed(target, str(temp))
        if digest != expected.sha256:
            raise ActionError(f"{target} {CHANGED}")
        os.replace(temp, backup)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    fsync_folder(str(backup.parent))


def _verify_unchanged(target: str, expected: FileState) -> None:
    found = FileState.of(target)
    if found is None or found.sha256 != expected.sha256:
        raise ActionError(f"{target} {CHANGED}")


def copy_hashed(source: str, dest: str, mode: int = 0o600) -> str:
    """Copy `source` to a new file `dest` (fsynced), a chunk at a time; the SHA-256 of
    what was copied."""
    sha = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            sha.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return sha.hexdigest()


def fsync_folder(folder: str) -> None:
    """Make a rename in `folder` durable (where the OS lets a folder be fsynced)."""
    fd = os.open(folder or ".", os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename stands regardless
    finally:
        os.close(fd)


def _regular(path: str) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):  # never opened: a FIFO would block, a link leads away
        raise ActionError(f"{path} exists and is not a regular file; not replacing it")
    return st


def _discard(temp: str | None, new: bytes | str) -> None:
    """Remove the temporary file pipe made; one the caller gave is the caller's."""
    if temp is not None and isinstance(new, bytes) and os.path.lexists(temp):
        os.unlink(temp)


def _pause() -> None:
    if between_steps is not None:
        between_steps()
