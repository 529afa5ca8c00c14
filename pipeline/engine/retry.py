"""How long to keep trying one model call, and how long to wait between tries.

Kept apart from the run loop so it can be tested with a fake clock: `clock` says what time
it is and `wait` sleeps (returning True when the run is stopping).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pipeline.backends import Busy, ContextOverflow, Transient, Unreachable

_T = TypeVar("_T")


class BackendDown(Exception):
    """The server stayed unreachable for longer than the run may wait: stop the run."""


class Interrupted(Exception):
    """The run is stopping: leave this item for the next run."""


@dataclass
class RetryPolicy:
    retries: int = 3  # further attempts after the first, for a failure worth retrying
    down_wait: float = 30.0  # how long a backend may be unreachable before the run stops
    busy_wait: float = 300.0  # how long to keep retrying "busy"/"loading" answers
    backoff: float = 0.5  # the first delay; each further one doubles (with jitter), max 30 s
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = lambda: random.uniform(0.75, 1.25)

    def wait(self, seconds: float) -> None:
        """Sleep, unless the run stops first (then Interrupted)."""
        if self.stop.wait(seconds):
            raise Interrupted

    def call(self, attempt: Callable[[], _T], on_attempt: Callable[[], None] = lambda: None) -> _T:
        """`attempt()` until it succeeds, fails for good, or the run stops.

        Unreachable: retried for `down_wait` seconds, then BackendDown. Busy: retried for
        `busy_wait` seconds, then raised. Other Transient errors: `retries` more times, then
        raised with the count. ContextOverflow and Rejected: raised at once.
        """
        failures = 0
        tries = 0
        busy_since: float | None = None
        down_since: float | None = None
        while True:
            if self.stop.is_set():
                raise Interrupted
            tries += 1
            on_attempt()
            try:
                return attempt()
            except ContextOverflow:
                raise
            except Unreachable as e:
                down_since = down_since if down_since is not None else self.clock()
                if self.clock() - down_since > self.down_wait:
                    raise BackendDown(f"{e} (for {self.down_wait:.0f} s); stopping") from None
                self.wait(min(2.0, self.backoff * 2))
            except Busy:
                # Busy or loading: not this item's fault; keep trying for a while.
                down_since = None
                busy_since = busy_since if busy_since is not None else self.clock()
                if self.clock() - busy_since > self.busy_wait:
                    raise
                self.wait(self.delay(min(failures + 1, 5)))
            except Transient as e:
                if self.stop.is_set():
                    raise Interrupted from None  # the stop killed it (a child, a connection)
                down_since = None
                failures += 1
                if failures > self.retries:
                    raise Transient(f"{e} (after {tries} attempts)") from None
                self.wait(self.delay(failures))

    def delay(self, attempt: int) -> float:
        base = self.backoff * 2 ** (attempt - 1)
        return min(base, 30.0) * self.jitter()
