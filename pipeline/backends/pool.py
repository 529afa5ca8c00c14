"""Several servers used as one backend: each request goes to a member with a free slot.

The engine sees one Backend whose `info.slots` is the sum of its members' slots, so its
SlotGate keeps every member busy. `complete()` takes the least busy member that is up (a
heap, so choosing costs O(log servers), never O(servers)), and a member whose failure means
"this server is in trouble" (refused, 503 busy or loading, 5xx, timeouts, dropped
connections) is benched with exponential backoff: its slots are not used until the bench
ends, and the request is sent again at once to another member, so the in-flight items of a
dead server are done elsewhere. When every member is benched, the request waits for the
first to come back (a short while) and otherwise raises Unreachable (or Busy, when every
member said busy): the run's RetryPolicy then waits `down_wait` and stops the run as it
does for one server. Per-item errors (Rejected, ContextOverflow) pass through unchanged.

No thread of its own: benches end when the next request looks (a heap of bench ends).

A server that did not answer at the start (`late`) is a member too, benched from the start:
each time its bench ends, one of a few short-lived joiner threads connects to it, and once
it answers with the pool's model it takes work like the others.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pipeline.answers import Picture
from pipeline.backends.base import (
    Backend,
    BackendError,
    Busy,
    Completion,
    DrawRequest,
    Rejected,
    Request,
    ServerInfo,
    Transient,
    Unreachable,
)
from pipeline.backends.pool_members import (
    Member,
    MixedModels,
    describe,
    misfit,
    model_getter,
    pooled_info,
)

__all__ = ["Join", "Member", "MixedModels", "Pool", "Roster"]

BENCH_FIRST = 0.5  # seconds a member sits out after its first failure; doubles each time
BENCH_MAX = 8.0  # ...up to this, well inside the default 30 s --wait, so a member that
# comes back is tried again before the run gives up on the pool
ALL_DOWN_WAIT = 2.0  # with every member benched, wait this long at most for one to return
# before raising (the run's RetryPolicy then tries again until its down_wait is over)
HOPS = 3  # other members a request may try after 5xx/timeouts before the error is its own
JOINERS = 4  # threads that try servers which were down at the start, at most, at once
_T = TypeVar("_T")


# Connects to a server that was down at the start: its backend and slots, or BackendError.
Join = Callable[[str], tuple[Backend, int]]


class Pool(Backend):
    kind = "pool"

    def __init__(
        self,
        members: Sequence[Backend],
        slots: Sequence[int] | None = None,
        *,
        late: Sequence[tuple[str, Exception]] = (),
        join: Join | None = None,
        say: Callable[[str], None] = lambda message: None,
        allow_mixed_models: bool = False,
        drawing: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`members` answered at the start; `late` are URLs that did not (with why), which
        `join` connects to later; `say` tells the user when one joins or never can. With
        `drawing`, the members are image servers: their image models must match."""
        if not members:
            raise ValueError("a pool needs at least one member")
        if late and join is None:
            raise ValueError("late members need a join function")
        infos = [member.info for member in members]
        counts = [max(1, n) for n in slots] if slots is not None else [i.slots or 1 for i in infos]
        self._model_of = model_getter(drawing)
        self._models = sorted({self._model_of(info) for info in infos})
        if len(self._models) > 1 and not allow_mixed_models:
            raise MixedModels(
                {b.url: self._model_of(i) for b, i in zip(members, infos, strict=True)}
            )
        up = [Member(b, b.url, n, i) for i, (b, n) in enumerate(zip(members, counts, strict=True))]
        # A late member is expected to bring the typical member's slots: the engine's gate
        # counts them from the start (requests wait here while it is still away).
        typical = sorted(counts)[len(counts) // 2]
        away = [Member(None, url, typical, len(up) + i) for i, (url, _) in enumerate(late)]
        self.url = describe([m.url for m in up + away])
        self.info = pooled_info(infos, up + away, self.url, drawing)
        self._join = join
        self._say = say
        self._joiners = (
            ThreadPoolExecutor(min(JOINERS, len(late)), thread_name_prefix="pipe-join")
            if late
            else None
        )
        self._samplers: dict[str, str | None] = {}  # what sampler() found, until a join
        self.roster = Roster(up, clock, self._on_late)
        for (_, error), m in zip(late, away, strict=True):
            self.roster.add_late(m, error)  # its first try comes when this first bench ends

    @property
    def members(self) -> list[Member]:
        return self.roster.members

    # -- the Backend interface --------------------------------------------------------------
    def probe(self) -> ServerInfo:
        return self.info

    def complete(self, request: Request) -> Completion:
        return self._dispatch(lambda member: member.complete(request))

    def draw(self, request: DrawRequest) -> Picture:
        """Pictures go out like completions (a pool of koboldcpps with an image model)."""
        return self._dispatch(lambda member: member.draw(request))

    def sampler(self, wanted: str) -> str | None:
        """The members' name for a sampler; None if one of them lacks it (koboldcpp would
        draw its pictures with another, silently). Remembered: asked once per picture."""
        with self.roster.cond:
            if wanted not in self._samplers:
                names = [m.backend.sampler(wanted) for m in self.members if m.backend]
                self._samplers[wanted] = None if None in names else names[0]
            return self._samplers[wanted]

    def abort_running(self) -> None:
        """Ctrl-C: members that run a process per request (cli:) stop theirs."""
        for m in self.members:
            if m.backend:  # None for a late member
                m.backend.abort_running()

    def _dispatch(self, call: Callable[[Backend], _T]) -> _T:
        """`call` on the least busy member that is up; again on another one at once if
        that member is in trouble."""
        hops = 0  # members tried after 5xx/timeouts
        tries = 0  # members tried in all: a pool whose members keep coming back to fail
        # again gives up after trying each once, and the run's RetryPolicy takes over
        while True:
            tries += 1
            member, epoch = self.roster.acquire()
            assert member.backend is not None  # a member is ready only once it has joined
            try:
                answer = call(member.backend)
            except Rejected:  # this item's own problem (ContextOverflow, NoVision too)
                self.roster.release(member)
                raise
            except Transient as e:
                self.roster.bench(member, epoch, e)
                if not isinstance(e, (Unreachable, Busy)):
                    hops += 1
                    if hops > HOPS:
                        raise
                if tries > len(self.members) + HOPS:
                    raise
                continue
            except BaseException:
                self.roster.release(member)
                raise
            self.roster.release(member, answered=True)
            return answer

    def count_tokens(self, text: str) -> int | None:
        return self.roster.first_up().count_tokens(text)

    def raw_prompt(self, request: Request) -> tuple[str, list[str]]:
        return self.roster.first_up().raw_prompt(request)

    def check_vision(self) -> None:
        self.roster.first_up().check_vision()

    def close(self) -> None:
        if self._joiners:
            self._joiners.shutdown(wait=False, cancel_futures=True)
        for m in self.members:
            if m.backend:
                m.backend.close()

    # -- what the run reports ---------------------------------------------------------------
    def answered(self) -> dict[str, int]:
        """Requests each member has answered so far, by URL."""
        with self.roster.cond:
            return {m.url: m.answered for m in self.members}

    # -- members that were down at the start ------------------------------------------------
    def _on_late(self, member: Member) -> None:
        """A late member's bench ended (the roster's lock held): a joiner tries it."""
        if not member.joining and self._joiners:
            member.joining = True
            self._joiners.submit(self._try_join, member)

    def _try_join(self, member: Member) -> None:
        """On a joiner thread: connect to a late member; it joins, sits out another bench
        (still down), or stays out (it answers, but cannot serve this pool's work)."""
        assert self._join is not None
        try:
            backend, slots = self._join(member.url)
        except Transient as e:
            with self.roster.cond:
                member.joining = False
                self.roster.sit_out(member, e)
            return
        except BackendError as e:
            self._stay_out(member, str(e))
            return
        why = misfit(self.info, self._models, self._model_of, backend.info)
        if why:
            backend.close()
            self._stay_out(member, why)
            return
        with self.roster.cond:
            self._samplers.clear()
            self.roster.admit(member, backend, slots)
        self._say(f"{member.url} answers now: it joins the pool")

    def _stay_out(self, member: Member, why: str) -> None:
        """A late member that answers but cannot serve: benched for good, and said once."""
        with self.roster.cond:
            member.joining = False
        self._say(f"warning: {member.url} answers now but stays out of the pool: {why}")


class Roster:
    """Which member is free: the least busy of those up (a heap of loads), and when each
    benched one may be tried again (a heap of bench ends). Every change of a member's state
    happens under `cond`; a late member whose bench ends is handed to `on_late`."""

    def __init__(
        self,
        members: list[Member],
        clock: Callable[[], float],
        on_late: Callable[[Member], None],
    ) -> None:
        self.members = members
        self.clock = clock
        self.cond = threading.Condition()  # reentrant: a Pool may hold it around admit()
        self._on_late = on_late
        self._up = len(members)
        self._ready: list[tuple[float, int, int]] = []  # (load, index, version)
        self._bench: list[tuple[float, int, int]] = []  # (until, index, epoch)
        for m in members:
            self._push_ready(m)

    def add_late(self, member: Member, error: Exception) -> None:
        """A member that did not answer at the start: benched until a joiner reaches it."""
        with self.cond:
            self.members.append(member)
            self.sit_out(member, error)

    def admit(self, member: Member, backend: Backend, slots: int) -> None:
        """A late member answers and fits the pool: it takes work from now on."""
        with self.cond:
            member.backend, member.slots = backend, max(1, slots)
            member.joining, member.benched, member.failures = False, False, 0
            member.trouble = None
            member.version += 1
            self._up += 1
            self._push_ready(member)
            self.cond.notify_all()

    def first_up(self) -> Backend:
        """The first member that is up (the first of all when none is)."""
        with self.cond:
            self._end_benches(self.clock())
            for m in self.members:
                if not m.benched and m.backend:
                    return m.backend
        return next(b for m in self.members if (b := m.backend))

    def acquire(self) -> tuple[Member, int]:
        """The least busy member with a free slot; waits while every one that is up is
        full; raises when every member is benched for longer than ALL_DOWN_WAIT."""
        with self.cond:
            gave_up_at: float | None = None
            while True:
                now = self.clock()
                self._end_benches(now)
                member = self._pop_ready()
                if member is not None:
                    member.active += 1
                    member.version += 1
                    self._push_ready(member)
                    return member, member.epoch
                timeout = 0.25
                if self._up == 0:
                    gave_up_at = gave_up_at if gave_up_at is not None else now + ALL_DOWN_WAIT
                    if now >= gave_up_at:
                        raise self._all_down()
                    timeout = max(0.0, min(self._bench[0][0] - now, gave_up_at - now))
                self.cond.wait(timeout)

    def release(self, member: Member, answered: bool = False) -> None:
        with self.cond:
            member.active -= 1
            if answered:
                member.answered += 1
                member.failures = 0
            member.version += 1
            self._push_ready(member)
            self.cond.notify()

    def bench(self, member: Member, epoch: int, error: Exception) -> None:
        """Take `member` out for a while (once per trouble: the other requests that were in
        flight on it when it failed come back with the same news)."""
        with self.cond:
            member.active -= 1
            member.version += 1
            if member.benched or member.epoch != epoch:
                self._push_ready(member)
                return
            self.sit_out(member, error)
            self._up -= 1
            self.cond.notify_all()  # those waiting may now have to give up sooner

    def sit_out(self, member: Member, error: Exception) -> None:
        """Bench `member` (the lock held): 0.5 s after its first failure in a row, doubling
        up to BENCH_MAX."""
        member.failures += 1
        member.benched = True
        member.epoch += 1
        member.trouble = error
        delay = min(BENCH_MAX, BENCH_FIRST * 2 ** (member.failures - 1))
        heapq.heappush(self._bench, (self.clock() + delay, member.index, member.epoch))

    def _end_benches(self, now: float) -> None:
        while self._bench and self._bench[0][0] <= now:
            _, index, epoch = heapq.heappop(self._bench)
            member = self.members[index]
            if not member.benched or member.epoch != epoch:
                continue  # old news
            if member.backend is None:  # late: it stays benched until it answers
                self._on_late(member)
            else:
                member.benched = False
                member.version += 1
                self._up += 1
                self._push_ready(member)

    def _push_ready(self, member: Member) -> None:
        if member.benched or member.active >= member.slots:
            return
        heapq.heappush(self._ready, (member.load, member.index, member.version))
        if len(self._ready) > 4 * len(self.members) + 64:  # stale entries: rebuild, O(1)
            self._ready = [  # amortised over the pushes that made them
                (m.load, m.index, m.version)
                for m in self.members
                if not m.benched and m.active < m.slots
            ]
            heapq.heapify(self._ready)

    def _pop_ready(self) -> Member | None:
        while self._ready:
            _, index, version = heapq.heappop(self._ready)
            member = self.members[index]
            if version == member.version and not member.benched and member.active < member.slots:
                return member
        return None

    def _all_down(self) -> Transient:
        troubles = [m.trouble for m in self.members if m.trouble is not None]
        last = str(troubles[-1]) if troubles else "no answer"
        message = f"every server of the pool is failing (last: {last})"
        if troubles and all(isinstance(t, Busy) for t in troubles):
            return Busy(message)
        return Unreachable(message)
