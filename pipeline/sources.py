"""Turn command-line arguments into a lazy stream of files.

Folders are walked depth-first, one directory listing at a time, so a tree of a million
files starts processing at once and memory does not grow with the tree. Problems with one
path (unreadable, vanished, a symlink loop) become an entry with an error, never an exception.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from stat import S_ISDIR, S_ISREG
from typing import IO

from pipeline.paths import display_path

GLOB_CHARS = set("*?[")


class Entry:
    """A file (or a path that could not be read) to run over. Made once per walked file:
    a plain class with slots is four times quicker to make than a frozen dataclass, so it
    is immutable by convention; it compares and hashes as the dataclass it was did."""

    __slots__ = ("path", "stat", "error", "known_key")

    def __init__(
        self,
        path: str,  # as the user will see it (relative when they gave a relative path)
        stat: os.stat_result | None = None,
        error: str | None = None,
        known_key: str | None = None,  # the walk's key, when it made one
    ) -> None:
        self.path = path
        self.stat = stat
        self.error = error
        self.known_key = known_key

    @property
    def key(self) -> str:
        """A stable identity across working directories: the absolute path, printable."""
        return self.known_key if self.known_key is not None else display_path(self.path)

    def _compared(self) -> tuple[str, os.stat_result | None, str | None]:
        return (self.path, self.stat, self.error)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Entry)
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        return f"Entry(path={self.path!r}, stat={self.stat!r}, error={self.error!r})"


@dataclass(frozen=True)
class Filters:
    patterns: tuple[str, ...] = ("*",)  # a file found in a folder must match one
    exclude: tuple[str, ...] = ()
    hidden: bool = False

    @cached_property
    def needs_relative(self) -> bool:
        """Only patterns with a '/' look at the path below the folder (saves a relpath a file)."""
        return any("/" in p for p in (*self.patterns, *self.exclude))

    @cached_property
    def wanted(self) -> Matcher:
        """Whether a file found in a folder is taken, by its name and its path below the
        folder: one compiled expression for the patterns, one for the exclusions."""
        excluded, included = _matcher(self.exclude), _matcher(self.patterns)
        if not self.exclude:
            return included
        return lambda name, relative: not excluded(name, relative) and included(name, relative)


def _match(name: str, relative: str, pattern: str) -> bool:
    if "/" in pattern:
        return fnmatch.fnmatch(relative, pattern)
    return fnmatch.fnmatch(name.lower(), pattern.lower())


Matcher = Callable[[str, str], bool]


def _matcher(patterns: tuple[str, ...]) -> Matcher:
    """Whether _match holds for any of `patterns`, as one expression for the names and one
    for the paths, compiled once: the walk asks it of every file."""
    on_name = [fnmatch.translate(os.path.normcase(p.lower())) for p in patterns if "/" not in p]
    on_path = [fnmatch.translate(os.path.normcase(p)) for p in patterns if "/" in p]
    names = re.compile("|".join(on_name)).match if on_name else None
    paths = re.compile("|".join(on_path)).match if on_path else None
    if paths is None:
        if names is None:
            return lambda name, relative: False
        if os.name != "nt":  # posix's normcase returns its argument: saved once a file
            return lambda name, relative: names(name.lower()) is not None
        return lambda name, relative: names(os.path.normcase(name.lower())) is not None
    return lambda name, relative: (
        (names is not None and names(os.path.normcase(name.lower())) is not None)
        or paths(os.path.normcase(relative)) is not None
    )


def stdin_paths(stream: IO[str], null_separated: bool = False) -> Iterator[str]:
    """Paths from stdin, one per line (or NUL-separated with -0), read as they arrive."""
    if not null_separated:
        for line in stream:
            line = line.rstrip("\r\n")
            if line:
                yield line
        return
    pending = ""
    while chunk := stream.read(65536):
        pending += chunk
        *complete, pending = pending.split("\0")
        yield from (p for p in complete if p)
    if pending.strip("\n"):
        yield pending.rstrip("\n")


def named_nothing(args: Iterable[str]) -> str | None:
    """The first argument that names no file: a missing path, or a pattern nothing matches.
    Checked before a run starts anything (a usage error, not a failed item)."""
    for arg in args:
        try:
            os.stat(arg)
            continue
        except FileNotFoundError:
            pass
        except OSError:
            continue  # there, but unreadable: the run says so for that path
        if (
            GLOB_CHARS & set(arg)
            and next(glob.iglob(arg, recursive=True, include_hidden=True), None) is not None
        ):
            continue
        return arg
    return None


def expand(args: Iterable[str], filters: Filters) -> Iterator[Entry]:
    """Every file named by `args`: files as given, folders walked, globs expanded."""
    for arg in args:
        try:
            st = os.stat(arg)
        except FileNotFoundError:
            if GLOB_CHARS & set(arg):
                yield from _expand_glob(arg, filters)
            else:
                yield Entry(arg, error="no such file or folder")
            continue
        except OSError as e:
            yield Entry(arg, error=f"cannot read: {e.strerror}")
            continue
        if S_ISDIR(st.st_mode):
            yield from walk(arg, filters)
        elif S_ISREG(st.st_mode):
            # A file named explicitly is taken whatever its extension; --exclude still applies.
            name = os.path.basename(arg)
            if not any(_match(name, arg, p) for p in filters.exclude):
                yield Entry(arg, st)
        else:
            yield Entry(arg, error="not a regular file")


def _expand_glob(pattern: str, filters: Filters) -> Iterator[Entry]:
    matches = sorted(glob.glob(pattern, recursive=True, include_hidden=filters.hidden))
    if not matches:
        yield Entry(pattern, error="no file matches this pattern")
    for path in matches:
        if os.path.isdir(path):
            yield from walk(path, filters)
        else:
            yield from expand([path], filters)


def walk(root: str, filters: Filters) -> Iterator[Entry]:
    """Depth-first, sorted by name; hidden entries skipped unless asked; loops detected."""
    seen_dirs: set[tuple[int, int]] = set()
    try:
        st = os.stat(root)
        seen_dirs.add((st.st_dev, st.st_ino))
    except OSError as e:
        yield Entry(root, error=f"cannot read folder: {e.strerror}")
        return
    folder = _Folder.open(root, 0)
    if isinstance(folder, Entry):
        yield folder
        return
    stack = [folder]
    wanted, hidden, needs_relative = filters.wanted, filters.hidden, filters.needs_relative
    try:
        while stack:
            folder = stack[-1]
            prefix, folder_key = folder.prefix, folder.key
            # The folder's entries in one loop, left for a subfolder (walked first, then
            # this loop goes on where it was): every file of a re-check passes here.
            for entry in folder.entries:
                name = entry.name
                if not hidden and name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                    st = entry.stat()  # DirEntry caches it: one stat a file
                except OSError as e:
                    if entry.is_symlink():
                        continue  # a dangling link is not a file anyone meant to process
                    yield Entry(prefix + name, error=f"cannot read: {e.strerror}")
                    continue
                if is_dir:
                    ident = (st.st_dev, st.st_ino)
                    if ident in seen_dirs:
                        continue  # a symlink loop or a second way into the same folder
                    seen_dirs.add(ident)
                    sub = _Folder.open(prefix + name, len(stack))
                    if isinstance(sub, Entry):
                        yield sub
                        continue
                    stack.append(sub)
                    break
                if S_ISREG(st.st_mode) and wanted(
                    name, os.path.relpath(prefix + name, root) if needs_relative else name
                ):
                    text = folder_key and (name.isascii() or _is_text(name))
                    yield Entry(prefix + name, st, None, folder_key + name if text else None)
            else:
                stack.pop().close()
    finally:
        for folder in stack:
            folder.close()


class _Folder:
    """A folder being walked: its entries sorted by name, the path and key its files'
    names go after, and (near the top of the tree) the folder open, so that each file's
    stat is looked up from the folder, not from the root of the file system again."""

    FD_DEPTH = 32  # folders held open at most, whatever the tree's depth

    def __init__(self, path: str, entries: Iterator[os.DirEntry[str]], fd: int | None) -> None:
        self.prefix = os.path.join(path, "")
        self.key = _folder_key(path)
        self.entries = entries
        self.fd = fd

    @classmethod
    def open(cls, path: str, depth: int) -> _Folder | Entry:
        fd = None
        try:
            if depth < cls.FD_DEPTH and os.scandir in os.supports_fd:  # not on Windows
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            with os.scandir(path if fd is None else fd) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if fd is not None:
                os.close(fd)
            return Entry(path, error=f"cannot read folder: {e.strerror}")
        return cls(path, iter(entries), fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _folder_key(folder: str) -> str | None:
    """display_path's key of the files in `folder` without their names (made once a
    folder, not once a file); None when the folder's name is not text (keyed one by one)."""
    key = display_path(folder)
    return None if key != os.path.abspath(folder) else os.path.join(key, "")


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
