"""A run's standard output, held while the answers of finished files come in a burst.

A re-check shows every finished file's answer: written and flushed one by one, that is a
system call a file (and a wake-up of whatever reads the pipe): a large part of a cron
run's cost. Held, they go out a block at a time. Nothing is held on a terminal (people
watch it), nor for long: the runner lets the answers out before it waits for a worker and
before any message on stderr, so the two streams keep their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import IO, Any, Protocol, TypeVar, cast

from pipeline.engine.options import Options

LIMIT = 1 << 16  # characters held at most
MAX_AGE = 0.2  # seconds an answer may wait for the ones after it

T = TypeVar("T")


class Showing(Protocol):
    """What the runner holds the stream of: an action, which writes answers to `out`."""

    out: IO[str]


class HeldOutput:
    """Stands for the action's stream during a run: writes are held, flushes wait for
    release() (or for LIMIT characters, or MAX_AGE seconds)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._parts: list[str] = []
        self._size = 0
        self._since = 0.0  # when the oldest held part was written

    def write(self, text: str) -> int:
        if not self._parts:
            self._since = time.monotonic()
        self._parts.append(text)
        self._size += len(text)
        if self._size >= LIMIT or time.monotonic() - self._since > MAX_AGE:
            self.release()
        return len(text)

    def flush(self) -> None:
        """The action flushes after each answer: held all the same, until release()."""

    def release(self) -> None:
        """Write out (and flush) what is held."""
        if self._parts:
            text = "".join(self._parts)
            self._parts.clear()
            self._size = 0
            self.stream.write(text)
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # isatty, fileno, encoding...


def hold(action: Showing, options: Options) -> tuple[HeldOutput | None, Options]:
    """Hold the action's stream for a run (unless it is a terminal): the held stand-in, and
    the run's options, whose messages first let out what is held."""
    isatty = getattr(action.out, "isatty", None)
    if isatty is None or isatty():
        return None, options
    held = HeldOutput(action.out)
    action.out = cast(IO[str], held)
    return held, releasing_first(options, held)


def let_go(action: Showing, held: HeldOutput | None) -> None:
    """The run's end: the action's own stream back, and everything held written out."""
    if held is not None:
        action.out = held.stream
        held.release()


def releasing_first(options: Options, held: HeldOutput) -> Options:
    """The run's options, whose messages (stderr) first let out the answers held before them."""

    def first(say: Callable[[T], None] | None) -> Callable[[T], None] | None:
        if say is None:
            return None

        def said(what: T) -> None:
            held.release()
            say(what)

        return said

    return replace(
        options,
        on_error=first(options.on_error),
        on_note=first(options.on_note),
        on_info=first(options.on_info),
    )
