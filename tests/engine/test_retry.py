"""pipeline.engine.retry: backing off, waiting out a busy server, and giving up."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.backends import (
    Busy,
    ContextOverflow,
    Rejected,
    Transient,
    Unreachable,
)
from pipeline.engine.retry import BackendDown, Interrupted, RetryPolicy


class FakeClock:
    """Time that moves only when the policy waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now


def policy(clock: FakeClock, **kwargs: float) -> RetryPolicy:
    retry = RetryPolicy(clock=clock, jitter=lambda: 1.0, **kwargs)  # type: ignore[arg-type]

    def wait(seconds: float) -> None:
        clock.waits.append(seconds)
        clock.now += seconds

    retry.wait = wait  # type: ignore[method-assign]
    return retry


def failing(errors: list[Exception], answer: str = "ok") -> Any:
    def attempt() -> str:
        if errors:
            raise errors.pop(0)
        return answer

    return attempt


def test_retry_backs_off_doubling_then_gives_up_with_the_count() -> None:
    clock = FakeClock()
    retry = policy(clock, retries=3, backoff=0.5)
    with pytest.raises(Transient, match=r"after 4 attempts"):
        retry.call(failing([Transient("garbage")] * 10))
    assert clock.waits == [0.5, 1.0, 2.0]
    clock.waits.clear()
    assert retry.call(failing([Transient("x"), Transient("y")])) == "ok"
    assert clock.waits == [0.5, 1.0]


def test_retry_waits_out_a_busy_server_for_busy_wait_seconds() -> None:
    clock = FakeClock()
    retry = policy(clock, busy_wait=60, backoff=1)
    assert retry.call(failing([Busy("503")] * 8)) == "ok"  # more than `retries`: still fine
    with pytest.raises(Busy):
        retry.call(failing([Busy("503")] * 1000))
    assert 60 < clock.now < 60 + 16 + 8 + 16  # stopped soon after busy_wait, delays capped


def test_retry_stops_the_run_when_the_server_stays_down() -> None:
    clock = FakeClock()
    retry = policy(clock, down_wait=10, backoff=0.5)
    assert retry.call(failing([Unreachable("refused")] * 5)) == "ok"
    with pytest.raises(BackendDown, match="for 10 s"):
        retry.call(failing([Unreachable("refused")] * 1000))


def test_retry_does_not_retry_what_cannot_succeed() -> None:
    clock = FakeClock()
    retry = policy(clock)
    for error in (Rejected("bad grammar"), ContextOverflow("too long", 300, 256)):
        with pytest.raises(type(error)):
            retry.call(failing([error]))
    assert clock.waits == []
    retry.stop.set()
    with pytest.raises(Interrupted):
        retry.call(failing([]))
