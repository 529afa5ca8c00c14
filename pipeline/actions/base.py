"""The action protocol, the item result every action receives, and the plain one: print.

An action is opened once per run (`open`), sees every finished item in input order
(`apply`), and finishes what it deferred at the end (`close`). Actions are the only code
that writes where the user's files live; they write through `write_output`, which never
replaces a file that pipe did not write.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar, Protocol

from pipeline.actions.keys import Needs
from pipeline.answers import Picture
from pipeline.results import ActionError, Result
from pipeline.terminal import Shown

if TYPE_CHECKING:
    from pipeline.recipe import Recipe
    from pipeline.store.database import Store


class OutputLog(Protocol):
    """Remembers which files pipe wrote, so it replaces only its own (the state store)."""

    def output_digest(self, path: str) -> str | None: ...

    def written_output(self, path: str) -> tuple[str, int | None] | None: ...

    def remember_output(self, path: str, digest: str, size: int | None = None) -> None: ...


@dataclass
class ActionContext:
    """What an action may use: the recipe, the store, where and how to print."""

    recipe: Recipe
    store: Store
    out: IO[str]
    as_json: bool = False
    headers: bool = False  # `==> path <==` before each answer (several files)
    model: str = ""
    dry_run: bool = False
    out_dir: str | None = None  # --out: where written files go instead of beside the input
    contact_sheet: str | None = None  # --contact-sheet: one picture of the run's pictures
    xmp_sidecar: str = "photo.jpg.xmp"  # how XMP sidecars are named (config's xmp_sidecar)


class Action:
    """Print answers (text or JSON Lines); the base of every action."""

    name: ClassVar[str] = "print"
    choosable: ClassVar[bool] = True  # offered by `--write`
    then_keys: ClassVar[type[Any] | None] = None  # its `then` keys: a dataclass (keys.py)
    needs: ClassVar[Needs] = Needs()  # what the recipe must answer for it
    takes_out_dir: ClassVar[bool] = False  # writes its files into `--out DIR` when given

    def __init__(self, context: ActionContext) -> None:
        self.context = context
        self.recipe = context.recipe
        self.store = context.store
        self.out = context.out
        self.as_json = context.as_json
        self.headers = context.headers
        self.model = context.model
        self.dry_run = context.dry_run
        self.shown = Shown(self.out)  # answers and names escaped when stdout is a terminal
        self._first = True

    @classmethod
    def open(cls, context: ActionContext) -> Action:
        return cls(context)

    def apply(self, result: Result) -> None:
        """Called for every finished item (skipped ones included, with the cached answer)."""
        self.emit(result)

    def close(self, run_id: int) -> None:
        """At the end of the run: finish the items this action deferred (renames)."""

    def emit(self, result: Result) -> None:
        if self.as_json:
            self.out.write(json.dumps(result.record(self.model), ensure_ascii=False) + "\n")
        elif result.answer is not None and result.status != "failed":
            text = self.shown.text(shown_answer(result).rstrip("\n")) + "\n"
            if self.headers:  # one write: unbuffered (python -u), each write is a syscall
                header = f"==> {self.shown.name(result.path)} <=="
                text = ("" if self._first else "\n") + header + "\n" + text
            self.out.write(text)
            self._first = False
        else:
            return
        self.out.flush()


def shown_answer(result: Result) -> str:
    """An answer as a line of text: a picture is shown by its file, size and seed."""
    answer = result.answer
    if not isinstance(answer, Picture):
        return answer or ""
    where = result.output or f"picture {answer.sha256[:12]}"
    return f"{where} ({answer.width}x{answer.height}, seed {answer.seed})"


def write_output(outputs: OutputLog, target: str, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same folder, replacing a file
    only if its bytes are the ones pipe wrote there (see `check_replaceable`). A new file gets
    the user's umask (0666 & ~umask), a replaced one keeps its permissions."""
    existing = check_replaceable(outputs, target, data)
    if existing is True:
        return
    folder = os.path.dirname(target) or "."
    tmp = os.path.join(folder, f".pipe-{secrets.token_hex(8)}.tmp")
    # Not mkstemp: its 0600 would hide the file from the user's group and other tools.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if existing:  # pipe's own file: as the user left its mode
                os.fchmod(f.fileno(), stat.S_IMODE(existing.st_mode))
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    outputs.remember_output(os.path.abspath(target), digest(data), len(data))


def check_replaceable(
    outputs: OutputLog, target: str, data: bytes | None = None
) -> os.stat_result | bool:
    """May pipe write `target`? False: nothing is there; True: it already holds exactly
    `data`; its stat: it is a file whose bytes are the ones pipe last wrote there. Anything
    else (a file pipe never wrote, one changed since, a link, a folder) raises ActionError:
    people's files are never replaced. Every output pipe writes goes through this check."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):  # never opened: a FIFO would block, a link leads away
        raise ActionError(f"{target} exists and is not a file pipe wrote; not replacing it")
    if data is not None and st.st_size == len(data) and _holds(target, data):
        return True
    written = outputs.written_output(os.path.abspath(target))
    if written is None:
        raise ActionError(f"{target} exists and was not written by pipe; not replacing it")
    remembered, size = written
    if remembered == LEGACY_SHEET:
        raise ActionError(
            f"{target} was written by an older pipe that did not record its content; "
            "not replacing it (move it away to have a new one)"
        )
    if (size is not None and st.st_size != size) or file_digest(target) != remembered:
        raise ActionError(f"{target} was changed since pipe wrote it; not replacing it")
    return st


# What pipe before 006_output_size remembered for a contact sheet instead of its digest.
LEGACY_SHEET = "contact-sheet"


def file_digest(path: str) -> str:
    """The SHA-256 of a file, read in chunks (memory stays bounded whatever its size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _holds(path: str, data: bytes) -> bool:
    """Whether the file holds exactly `data`: compared as read, a chunk at a time (a re-run
    checks every sidecar it would write, so no hashing, and no Python file object: this is
    about half the time). Non-blocking: a FIFO swapped in after the lstat does not hang."""
    view = memoryview(data)
    offset = 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    try:
        while True:
            got = os.read(fd, min(COMPARE_CHUNK, len(data) - offset + 1))
            if not got:
                return offset == len(data)
            if got != view[offset : offset + len(got)]:
                return False
            offset += len(got)
    finally:
        os.close(fd)


COMPARE_CHUNK = 1 << 20


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
