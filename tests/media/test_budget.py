"""pipeline.media.budget: the pixels being decoded at once, shared by every thread.

Threads wait on observable state (events, the budget's own condition), never on sleep."""

from __future__ import annotations

import platform
import random
import threading

import pytest

from pipeline.media import ImageError
from pipeline.media.allocator import return_big_buffers
from pipeline.media.budget import PixelBudget


def hold(budget: PixelBudget, cost: int, entered: threading.Event, leave: threading.Event) -> None:
    with budget.use(cost):
        entered.set()
        assert leave.wait(10)


def test_budget_serves_in_order_and_fits_what_it_can() -> None:
    budget = PixelBudget(10)
    events = {name: (threading.Event(), threading.Event()) for name in "abc"}
    costs = {"a": 6, "b": 6, "c": 3}
    threads = {n: threading.Thread(target=hold, args=(budget, costs[n], *events[n])) for n in "abc"}
    threads["a"].start()
    assert events["a"][0].wait(5)
    threads["b"].start()
    assert budget.wait_until(lambda b: b.waiting == 1, 5)
    threads["c"].start()  # would fit beside a, but b is first in line: no overtaking
    assert budget.wait_until(lambda b: b.waiting == 2, 5)
    assert not events["b"][0].is_set() and not events["c"][0].is_set()
    assert budget.in_use == 6
    events["a"][1].set()
    assert events["b"][0].wait(5) and events["c"][0].wait(5)  # 6 + 3 fit together
    assert budget.in_use == 9
    for name in "bc":
        events[name][1].set()
    for thread in threads.values():
        thread.join(5)
    assert budget.in_use == 0 and budget.waiting == 0


def test_budget_a_photo_bigger_than_all_of_it_runs_alone_and_is_not_starved() -> None:
    budget = PixelBudget(10)
    small = [(threading.Event(), threading.Event()) for _ in range(4)]
    big = (threading.Event(), threading.Event())
    alone: list[tuple[int, int]] = []

    def run_big() -> None:
        with budget.use(25):
            alone.append((budget.in_use, budget.running))
            big[0].set()
            assert big[1].wait(10)

    workers = [threading.Thread(target=hold, args=(budget, 4, *small[i])) for i in range(2)]
    for worker in workers:
        worker.start()
    for entered, _ in small[:2]:
        assert entered.wait(5)
    workers.append(threading.Thread(target=run_big))
    workers[-1].start()
    assert budget.wait_until(lambda b: b.waiting == 1, 5)
    for i in (2, 3):  # small ones keep coming; they queue behind the big one
        workers.append(threading.Thread(target=hold, args=(budget, 4, *small[i])))
        workers[-1].start()
    assert budget.wait_until(lambda b: b.waiting == 3, 5)
    for _, leave in small[:2]:
        leave.set()
    assert big[0].wait(5)
    assert alone == [(25, 1)]  # nothing else decodes beside it
    assert not small[2][0].is_set() and not small[3][0].is_set()
    big[1].set()
    assert small[2][0].wait(5) and small[3][0].wait(5)
    for _, leave in small[2:]:
        leave.set()
    for worker in workers:
        worker.join(5)
    assert budget.in_use == 0


def test_budget_is_given_back_when_decoding_fails() -> None:
    budget = PixelBudget(10)
    with pytest.raises(ImageError), budget.use(8):
        raise ImageError("corrupt PNG")
    assert budget.in_use == 0 and budget.running == 0
    with budget.use(10):
        assert budget.in_use == 10


def test_budget_never_holds_more_than_its_limit_under_load() -> None:
    budget = PixelBudget(20)
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            with budget.use(rng.choice([1, 3, 7, 12, 20, 35])), lock:
                seen.append((budget.in_use, budget.running))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 1200
    assert all(in_use <= 20 or running == 1 for in_use, running in seen)
    assert budget.in_use == 0


def test_big_buffers_go_back_to_the_system_on_glibc() -> None:
    applied = return_big_buffers()
    assert applied is return_big_buffers()  # once per process
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied
