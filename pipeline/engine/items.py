"""What flows through a run: the items going in, and what a worker hands back for each."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from pipeline.results import Result
from pipeline.sources import Entry

if TYPE_CHECKING:
    from pipeline.media.images import PreparedImage

STDIN_PATH = "<stdin>"


@dataclass
class Item:
    entry: Entry
    data: bytes | None = None  # text given on stdin instead of a file

    @property
    def path(self) -> str:
        return self.entry.path


def file_items(entries: Iterable[Entry]) -> Iterator[Item]:
    return map(Item, entries)  # no generator frame a file: the re-check's hot path


class Rewalkable(Iterator[Item]):
    """Items streamed lazily that can also be walked again from the start, only to count
    them: the progress bar's total, while the run's own walk is a few items ahead of it."""

    def __init__(self, walk: Callable[[], Iterator[Item]]) -> None:
        self.again = walk
        self._items = walk()

    def __next__(self) -> Item:
        return next(self._items)


def stdin_item(data: bytes) -> Item:
    return Item(Entry(STDIN_PATH), data=data)


def prepare_image(path: str, max_side: int) -> PreparedImage:
    """media's, imported on first use: Pillow is not loaded by a run that decodes nothing."""
    from pipeline.media.images import prepare_image as prepare

    return prepare(path, max_side=max_side)


@dataclass
class Loaded:
    """What a worker read from one item."""

    hash: str
    notes: list[str] = field(default_factory=list)
    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # exif, real extension
    _images: dict[int, bytes] = field(default_factory=dict)

    def image(self, path: str, size: int) -> bytes:
        """The upload JPEG, made once per size on first need (never for cache hits)."""
        if size not in self._images:  # prepare_image holds the shared pixel budget
            self._images[size] = prepare_image(path, max_side=size).jpeg
        return self._images[size]


@dataclass
class Done:
    """A worker's verdict on one item, for the main thread to act on and record."""

    item: Item
    result: Result
    hash: str | None = None
    fingerprint: str | None = None
    cache_rows: list[dict[str, Any]] = field(default_factory=list)
    fatal: str | None = None  # the run must stop: why
    # With `fatal`: "backend" (went away), "unable" (cannot run the recipe) or "usage" (the
    # recipe asks what this model cannot take: a card bigger than its context).
    stop_reason: str = "backend"


def line_items(stream: BinaryIO, source: str = "") -> Iterator[Item]:
    """One item per non-blank line, read as it arrives; each is keyed by its text (the
    answer cache), so a line seen before is not asked again."""
    for n, raw in enumerate(stream, 1):
        text = raw.rstrip(b"\r\n")
        if text.strip():
            where = f"{source}:{n}" if source else f"line {n}"
            yield Item(Entry(f"<{where}>"), data=text)


def item_fields(item: Item, text: str, answers: dict[str, Any], previous: Any) -> dict[str, Any]:
    """What a step's prompt may use: the item's text and name, and the earlier answers."""
    name = os.path.basename(item.path) if item.data is None else ""
    stem, ext = os.path.splitext(name)
    return {
        "text": text,
        "name": name,
        "path": item.path if item.data is None else "",
        "stem": stem,
        "ext": ext,
        "answer": previous,
        **answers,
    }
