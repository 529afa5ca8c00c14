"""A backend opened only when an item first needs a model answer: the embedded model is
started by the worker that needs it, never for a run that only skips finished files or
reuses cached answers.

Until then it is known by what it will be (`info`: its model, slots and context), which is
all that cache keys and the number of workers need. Opening happens once, under a lock;
the other workers wait for it. If it fails, every caller gets the same BackendUnavailable
(the run stops with exit 3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack

from pipeline.answers import Picture
from pipeline.backends.base import (
    Backend,
    Completion,
    DrawRequest,
    Request,
    ServerInfo,
    Timed,
    Transient,
)
from pipeline.errors import BackendUnavailable, UsageError

# Opens the real backend; whatever must be undone at the end (stop a server, close a
# client) goes on the stack, before the slow part, so a run that stops meanwhile undoes it.
Opener = Callable[[ExitStack], Backend]


class LazyBackend(Backend):
    def __init__(self, info: ServerInfo, opener: Opener) -> None:
        self.info = info  # what it will be: the cache keys need its model
        self.url = info.url
        self._opener = opener
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._backend: Backend | None = None
        self._error: BackendUnavailable | None = None
        self._closed = False
        self._checks: list[Callable[[Backend], None]] = []

    @property
    def opened(self) -> Backend | None:
        return self._backend

    def check_when_opened(self, check: Callable[[Backend], None]) -> None:
        """Run `check` on the real backend as it opens (what only the live server can say,
        such as its samplers), or now if it is open; a UsageError it raises as it opens
        stops the run like a server that is down (exit 3)."""
        with self._lock:
            if self._backend is None:
                self._checks.append(check)
                return
        check(self._backend)

    def open(self) -> Backend:
        """The real backend, opened by the first caller."""
        if self._backend is not None:
            return self._backend
        with self._lock:
            if self._backend is None:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise Transient(f"{self.url}: the run is stopping")
                try:
                    backend = self._opener(self._stack)
                    for check in self._checks:
                        check(backend)
                except UsageError as e:
                    self._error = BackendUnavailable(str(e))
                    raise self._error from None
                except BackendUnavailable as e:
                    self._error = e
                    raise
                self._backend = backend
            return self._backend

    # -- the Backend interface, on the real backend --------------------------------------
    def probe(self) -> ServerInfo:
        return self.info

    def complete(self, request: Request) -> Completion:
        return self.open().complete(request)

    def complete_timed(self, request: Request) -> Timed:
        return self.open().complete_timed(request)

    def count_tokens(self, text: str) -> int | None:
        return self.open().count_tokens(text)

    def raw_prompt(self, request: Request) -> tuple[str, list[str]]:
        return self.open().raw_prompt(request)

    def check_vision(self) -> None:
        self.open().check_vision()

    def draw(self, request: DrawRequest) -> Picture:
        return self.open().draw(request)

    def sampler(self, wanted: str) -> str | None:
        return self.open().sampler(wanted)

    def abort_running(self) -> None:
        if self._backend is not None:
            self._backend.abort_running()

    def close(self) -> None:
        """Stop what was opened (also while a worker is still opening it)."""
        self._closed = True
        self._stack.close()
