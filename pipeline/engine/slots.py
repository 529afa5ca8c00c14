"""Server slots shared by a run's workers."""

from __future__ import annotations

import heapq
import threading


class SlotGate:
    """At most `slots` model calls at once. A freed slot goes to the earliest item in input
    order among those ready and waiting, not to whichever thread wakes first: answers then
    come in the order they are shown, and an item still being prepared holds up nobody."""

    POLL = 0.25  # seconds between a waiter's looks at the run's stop event

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._waiting: list[int] = []  # a heap of the waiting items' input positions
        self._changed = threading.Condition()

    def acquire(self, position: int, stop: threading.Event) -> bool:
        """Wait for a slot; False if `stop` is set first."""
        with self._changed:
            heapq.heappush(self._waiting, position)
            while not (self._free and self._waiting[0] == position):
                if stop.is_set():
                    self._waiting.remove(position)
                    heapq.heapify(self._waiting)
                    self._changed.notify_all()
                    return False
                self._changed.wait(self.POLL)
            heapq.heappop(self._waiting)
            self._free -= 1
            self._changed.notify_all()  # with slots to spare, the next in line goes too
            return True

    @property
    def waiting(self) -> int:
        """How many items wait for a slot (for tests and displays)."""
        with self._changed:
            return len(self._waiting)

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()
