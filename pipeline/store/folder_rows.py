"""What the store holds about the files of one folder, read a chunk at a time in the walk's
order (names sorted), so that a re-run over a finished folder costs one read per CHUNK
files (a range of items, a range of outputs) instead of queries per file (and per sidecar).

A chunk covers the keys from the one asked first to the last row it holds (to the folder's
end when it holds fewer than CHUNK rows): any key in that range that has no row there has
none in the store. A chunk older than MAX_AGE is read again, so a verdict is never staler
than that: the same as asking the store once per file, give or take MAX_AGE.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

CHUNK = 256  # rows held at once: bounds memory whatever the folder's size
MAX_AGE = 1.0  # seconds a chunk is trusted (another run may write meanwhile)

# Reads the rows of the files directly in `folder` (it ends with a separator) whose keys are
# >= `start`, ordered by key, at most `limit`: (key, row) pairs.
Loader = Callable[[str, str, int], list[tuple[str, T]]]


class FolderRows(Generic[T]):
    def __init__(self, load: Loader[T], single: Callable[[str], T | None]) -> None:
        """`single` asks for one key (a key that is not an absolute path)."""
        self._load = load
        self._single = single
        self._folder: str | None = None
        self._low = ""
        self._high: str | None = None  # None: to the end of the folder
        self._rows: dict[str, T] = {}
        self._read_at = 0.0

    def get(self, key: str) -> T | None:
        row = self._rows.get(key)
        if row is not None and time.monotonic() - self._read_at <= MAX_AGE:
            return row  # in the chunk held, which is fresh: the re-check's every file
        cut = key.rfind(os.sep)
        if cut < 0:
            return self._single(key)
        folder = key[: cut + 1]
        if not self._covers(folder, key):
            rows = self._load(folder, key, CHUNK)
            self._folder, self._low, self._read_at = folder, key, time.monotonic()
            self._rows = dict(rows)
            self._high = rows[-1][0] if len(rows) >= CHUNK else None
        return self._rows.get(key)

    def _covers(self, folder: str, key: str) -> bool:
        return (
            folder == self._folder
            and self._low <= key
            and (self._high is None or key <= self._high)
            and time.monotonic() - self._read_at <= MAX_AGE
        )


def folder_range(folder: str) -> tuple[str, str]:
    """The keys of everything below `folder` (which ends with a separator) are >= the first
    and < the second: the separator's successor sorts right after it."""
    return folder, folder[:-1] + chr(ord(folder[-1]) + 1)
