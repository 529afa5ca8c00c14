"""pipeline.engine.inflight: work asked for twice at once is done once; the twin waits for
the owner's answer. Real threads; each test waits on facts (a waiter has checked its stop
event, so it is counted as waiting), never on a fixed time."""

from __future__ import annotations

import threading

import pytest

from pipeline.answers import Answer
from pipeline.engine.inflight import InFlight
from pipeline.engine.retry import Interrupted


class Watched(threading.Event):
    """A run's stop event that tells when a waiter first looked at it: `take` looks only
    once it is registered as waiting, so from then on the owner's answer is kept for it."""

    def __init__(self) -> None:
        super().__init__()
        self.looked = threading.Event()

    def is_set(self) -> bool:
        self.looked.set()
        return super().is_set()


class Waiter:
    """A worker in `take` on its own thread, with what it got (or raised)."""

    def __init__(self, shared: InFlight, fingerprint: str) -> None:
        self.stop = Watched()
        self.got: list[Answer | None] = []
        self.raised: list[BaseException] = []

        def run() -> None:
            try:
                self.got.append(shared.take(fingerprint, self.stop))
            except BaseException as e:  # the test looks at it
                self.raised.append(e)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.stop.looked.wait(30), "the waiter never waited"

    def result(self) -> Answer | None:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the waiter was never woken"
        assert not self.raised, self.raised
        [answer] = self.got
        return answer


def test_nobody_owning_it_means_do_it_yourself() -> None:
    stop = threading.Event()
    assert InFlight().take("fp", stop) is None


def test_a_twin_waits_for_the_owner_and_gets_its_answer() -> None:
    shared = InFlight()
    with shared.owning("fp") as share:
        waiter = Waiter(shared, "fp")
        assert waiter.thread.is_alive()  # still waiting while the owner works
        share("a harbour at dusk")
    assert waiter.result() == "a harbour at dusk"
    assert shared.take("fp", threading.Event()) is None  # nobody owns it any more


def test_every_waiting_twin_gets_the_answer() -> None:
    shared = InFlight()
    with shared.owning("fp") as share:
        waiters = [Waiter(shared, "fp") for _ in range(3)]
        share("one answer")
    assert [w.result() for w in waiters] == ["one answer"] * 3


def test_an_owner_that_fails_wakes_its_twins_to_do_it_themselves() -> None:
    shared = InFlight()
    with pytest.raises(RuntimeError), shared.owning("fp"):
        waiter = Waiter(shared, "fp")
        raise RuntimeError("the model went away")
    assert waiter.result() is None


def test_other_fingerprints_do_not_wait() -> None:
    shared = InFlight()
    with shared.owning("fp"):
        assert shared.take("other", threading.Event()) is None


def test_a_stopped_run_interrupts_a_waiting_twin() -> None:
    shared = InFlight()
    with shared.owning("fp"):
        waiter = Waiter(shared, "fp")
        waiter.stop.set()
        waiter.thread.join(30)
        assert [type(e) for e in waiter.raised] == [Interrupted]


def test_an_answer_nobody_waited_for_is_not_kept() -> None:
    """Answers are kept only while a twin waits: a later owner's twin never gets a stale one."""
    shared = InFlight()
    with shared.owning("fp") as share:
        share("stale")
    with shared.owning("fp"):
        waiter = Waiter(shared, "fp")
    assert waiter.result() is None


def test_a_second_owner_of_the_same_work_leaves_the_first_in_charge() -> None:
    shared = InFlight()
    with shared.owning("fp") as share:
        with shared.owning("fp"):
            pass  # a second owner came and went: twins still wait for the first
        waiter = Waiter(shared, "fp")
        share("the first's answer")
    assert waiter.result() == "the first's answer"
