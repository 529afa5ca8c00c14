"""How many pixels are being decoded at once, across all threads.

Memory while preparing photos is the decoded pixels held at once, not the number of photos:
a drafted 24 MP JPEG holds 1.5 MP, a 100 MP PNG streamed through libvips about a fifth of
its pixels, a photo read whole all of them. So each decode first takes its cost in pixels
from one shared budget and gives it back when done.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# 64 MP held at once, ~256 MB at Pillow's 4 bytes a pixel. Costs are what each decoder was
# measured to hold, so this is the bound for photos read whole (GIF, BMP, AVIF, JPEG XL);
# streamed and tiled ones cost 5-10 MP each, and a folder of 48 MP HEICs and 100 MP
# panoramas peaks at ~170 MB with pipe's own ~40 MB (bench big-photos).
BUDGET_PIXELS = 64_000_000
# And no single decode may hold more: one running alone past the budget would be the whole
# process's memory (a PNG of 6,000,000x50 held 2 GB). Such a photo is refused from its header.
MAX_COST = BUDGET_PIXELS


class PixelBudget:
    """At most `limit` pixels held by decodes at once.

    Waiters are served in arrival order, so a photo costing more than the whole budget is
    never starved by a stream of small ones: it waits until everything before it is done
    and then runs alone. Whoever is first in line runs as soon as it fits.
    """

    def __init__(self, limit: int = BUDGET_PIXELS) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._in_use = 0
        self._running = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def use(self, cost: int) -> Iterator[None]:
        """Hold `cost` pixels of the budget for the duration of the block."""
        cost = max(1, cost)
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                self._changed.wait_for(lambda: self._queue[0] is ticket and self._fits(cost))
            finally:  # granted, or interrupted while waiting: either way leave the line
                self._queue.remove(ticket)
                self._changed.notify_all()
            self._in_use += cost
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= cost
                self._running -= 1
                self._changed.notify_all()

    def _fits(self, cost: int) -> bool:
        return self._running == 0 or self._in_use + cost <= self.limit

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def wait_until(self, predicate: Callable[[PixelBudget], bool], timeout: float) -> bool:
        """Block until `predicate(self)` holds after some change (for tests and displays)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


# One budget for the whole process: every thread preparing photos shares it.
DECODING = PixelBudget()
