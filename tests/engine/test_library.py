"""pipe as a library: the runner, store and actions used directly, without the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from pipeline import media
from pipeline import recipe as recipes
from pipeline.actions import Action, ActionContext
from pipeline.backends import Completion, Request, connect
from pipeline.engine import Item, Options, Runner, SlotGate, file_items
from pipeline.engine import items as engine_items
from pipeline.engine.options import Summary
from pipeline.media.budget import DECODING
from pipeline.media.pillow_source import PillowSource
from pipeline.sources import Entry, Filters, expand
from pipeline.store.database import Store
from tests.conftest import wait_for
from tests.fakes.llama import FakeLlama

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "photos"


def run(tmp_path: Path, items: list[Item], server: FakeLlama) -> tuple[int, list[dict]]:
    out = io.StringIO()
    backend = connect(server.url)
    store = Store(tmp_path / "state.db")
    recipe = recipes.load("summarize-text")
    action = Action.open(ActionContext(recipe, store, out, as_json=True, model="m"))
    summary = Runner(recipe, backend, store, action, Options()).run(items, [])
    store.close()
    backend.close()
    return summary.exit_code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_file_that_vanishes_mid_run_is_one_error(tmp_path: Path) -> None:
    keep, gone = tmp_path / "keep.txt", tmp_path / "gone.txt"
    keep.write_text("still here\n")
    gone.write_text("about to vanish\n")
    entries = list(expand([str(tmp_path)], Filters(patterns=("*.txt",))))
    gone.unlink()  # after the walk saw it, before it is read
    with FakeLlama() as server:
        code, records = run(tmp_path, list(file_items(entries)), server)
    by_name = {os.path.basename(r["path"]): r for r in records}
    assert code == 1
    assert by_name["gone.txt"]["status"] == "failed"
    assert "No such file" in by_name["gone.txt"]["error"]
    assert by_name["keep.txt"]["status"] == "done"


def test_entries_with_errors_are_recorded_and_the_rest_runs(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    items = [
        Item(Entry("missing.txt", error="no such file or folder")),
        Item(Entry(str(good), os.stat(good))),
    ]
    with FakeLlama() as server:
        code, records = run(tmp_path, items, server)
    assert code == 1 and [r["status"] for r in records] == ["failed", "done"]


def test_the_next_photo_is_prepared_while_the_model_looks_at_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("landscape_1.jpg", "landscape_3.jpg", "landscape_6.jpg", "DSCN0010.jpg"):
        shutil.copy(SAMPLES / name, photos / name)
    events: list[tuple[str, float]] = []
    lock = threading.Lock()

    def log(event: str) -> None:
        with lock:
            events.append((event, time.monotonic()))

    def prepare(path: str, max_side: int) -> media.PreparedImage:
        log("prepare")
        return media.prepare_image(path, max_side=max_side)

    monkeypatch.setattr(engine_items, "prepare_image", prepare)
    with FakeLlama(vision=True, slots=1, latency=0.3) as server:
        backend = connect(server.url)
        complete = backend.complete

        def timed_complete(request: Request) -> Completion:
            log("call")
            try:
                return complete(request)
            finally:
                log("answer")

        monkeypatch.setattr(backend, "complete", timed_complete)
        # A waiter's poll made an hour long: the photos get through the one slot only if a
        # freed slot is handed to the next at once, as release() does.
        monkeypatch.setattr(SlotGate, "POLL", 3600.0)
        store = Store(tmp_path / "state.db")
        recipe = recipes.load("describe-images")
        action = Action.open(ActionContext(recipe, store, io.StringIO(), as_json=True, model="m"))
        entries = expand([str(photos)], Filters())
        runner = Runner(recipe, backend, store, action, Options())
        summaries: list[Summary] = []
        run = threading.Thread(
            target=lambda: summaries.append(runner.run(file_items(entries), [])), daemon=True
        )
        run.start()
        run.join(120)
        assert summaries, "a freed slot waited for the gate's poll instead of going on at once"
        [summary] = summaries
        store.close()
        backend.close()
    assert summary.exit_code == 0 and server.max_active == 1  # one slot, one call at a time
    calls = [t for e, t in events if e == "call"]
    answers = [t for e, t in events if e == "answer"]
    prepares = [t for e, t in events if e == "prepare"]
    assert len(calls) == len(prepares) == 4
    for ready, previous_answer in zip(sorted(prepares)[1:], answers[:-1], strict=True):
        # While the slot works on one photo, the next is already being made ready.
        assert ready < previous_answer, events
    for answered, next_call in zip(answers[:-1], calls[1:], strict=True):
        assert answered <= next_call, events  # one slot: each call after the last answer


def waiting(gate: SlotGate, n: int) -> None:
    wait_for(lambda: gate.waiting >= n, timeout=30, what=f"{n} items waiting at the gate")


def test_a_freed_slot_goes_to_the_earliest_waiting_item() -> None:
    gate, stop, served = SlotGate(1), threading.Event(), []
    assert gate.acquire(0, stop)

    def wait(position: int) -> None:
        assert gate.acquire(position, stop)
        served.append(position)
        gate.release()

    threads = [threading.Thread(target=wait, args=(p,)) for p in (3, 1, 2)]
    for t in threads:
        t.start()
    waiting(gate, 3)
    gate.release()
    for t in threads:
        t.join(5)
    assert served == [1, 2, 3]  # input order, not the order the threads arrived in


def test_slot_gate_with_two_slots_and_a_stop() -> None:
    gate, stop = SlotGate(2), threading.Event()
    assert gate.acquire(5, stop) and gate.acquire(9, stop)  # two slots, no waiting
    result: list[bool] = []
    late = threading.Thread(target=lambda: result.append(gate.acquire(7, stop)))
    late.start()
    waiting(gate, 1)
    stop.set()  # an interrupted run: the waiter gives up and leaves the line
    late.join(5)
    assert result == [False] and gate.waiting == 0
    gate.release()
    stop.clear()
    assert gate.acquire(11, stop)


def test_photos_are_decoded_within_the_shared_pixel_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(sorted(p.name for p in SAMPLES.glob("*.jpg"))):
        shutil.copy(SAMPLES / name, photos / f"{i:02}.jpg")
    lock, now, most, piled = threading.Lock(), [0], [0], threading.Event()
    decode = PillowSource.decode

    def counting(self: PillowSource, size: tuple[int, int]) -> Image.Image:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        try:
            if not piled.is_set():  # hold the first decode until a worker queues behind it
                deadline = time.monotonic() + 30
                while not DECODING.waiting and time.monotonic() < deadline:
                    time.sleep(0.005)
                if DECODING.waiting:
                    piled.set()
            return decode(self, size)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(PillowSource, "decode", counting)
    monkeypatch.setattr(DECODING, "limit", 1)  # every photo is over budget: one at a time
    with FakeLlama(vision=True, slots=8, latency=0.2) as server:
        backend = connect(server.url)
        store = Store(tmp_path / "state.db")
        recipe = recipes.load("describe-images")
        action = Action.open(ActionContext(recipe, store, io.StringIO(), as_json=True, model="m"))
        summary = Runner(recipe, backend, store, action, Options(jobs=8)).run(
            file_items(expand([str(photos)], Filters())), []
        )
        store.close()
        backend.close()
    assert summary.exit_code == 0 and server.max_active > 1
    assert piled.is_set()  # workers did pile in: a photo waited for the budget, not a slot
    assert most[0] == 1  # 10 workers, but the budget lets one photo decode at a time


def test_a_runner_runs_twice_and_keeps_nothing_between(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, n in ((first, 3), (second, 2)):
        folder.mkdir()
        for i in range(n):
            (folder / f"{i}.txt").write_text(f"note {folder.name} {i}\n")
    out = io.StringIO()
    with FakeLlama() as server:
        backend = connect(server.url)
        store = Store(tmp_path / "state.db")
        recipe = recipes.load("summarize-text")
        action = Action.open(ActionContext(recipe, store, out, as_json=True, model="m"))
        runner = Runner(recipe, backend, store, action, Options())
        one = runner.run(file_items(expand([str(first)], Filters())), [])
        two = runner.run(file_items(expand([str(second)], Filters())), [])
        again = runner.run(file_items(expand([str(first)], Filters())), [])
        store.close()
        backend.close()
    assert (one.counts.done, two.counts.done) == (3, 2) and two.run_id != one.run_id
    assert (again.counts.done, again.counts.skipped) == (0, 3)
    assert [one.exit_code, two.exit_code, again.exit_code] == [0, 0, 0]
