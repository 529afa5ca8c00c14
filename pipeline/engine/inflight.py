"""Work asked for twice at once is done once: two files with the same content, or a line
given twice, have the same step fingerprint; the second waits for the first's answer
instead of asking the model again (the cache only has it once the first is recorded)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.answers import Answer
from pipeline.engine.retry import Interrupted


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}
        self._waiting: dict[str, int] = {}
        self._answers: dict[str, Answer] = {}  # kept only while someone waits for it

    def take(self, fingerprint: str, stop: threading.Event) -> Answer | None:
        """If another worker is working on `fingerprint`, wait for it and return its answer
        (None: nobody is, or it failed; then do it yourself)."""
        with self._lock:
            done = self._running.get(fingerprint)
            if done is None:
                return None
            self._waiting[fingerprint] = self._waiting.get(fingerprint, 0) + 1
        try:
            while not done.wait(0.25):
                if stop.is_set():
                    raise Interrupted
        finally:
            with self._lock:
                self._waiting[fingerprint] -= 1
                if not self._waiting[fingerprint]:
                    del self._waiting[fingerprint]
                    answer = self._answers.pop(fingerprint, None)
                else:
                    answer = self._answers.get(fingerprint)
        return answer

    @contextmanager
    def owning(self, fingerprint: str) -> Iterator[Callable[[Answer], None]]:
        """Do the work for `fingerprint`; the caller passes the answer to the function it is
        given, for any twin that waits. Leaving (with or without one) wakes the waiters."""
        done = threading.Event()
        with self._lock:
            self._running.setdefault(fingerprint, done)

        def share(answer: Answer) -> None:
            with self._lock:
                if self._waiting.get(fingerprint):
                    self._answers[fingerprint] = answer

        try:
            yield share
        finally:
            with self._lock:
                if self._running.get(fingerprint) is done:
                    del self._running[fingerprint]
            done.set()
