"""Several --backend servers used together: a Pool spreads the work, benches a server in
trouble and carries on with the others, and the run says who did what."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.answers import Picture
from pipeline.backends import (
    Busy,
    Completion,
    DrawRequest,
    Rejected,
    Request,
    ServerInfo,
    Unreachable,
)
from pipeline.backends import pool as pool_module
from pipeline.backends.base import Backend
from pipeline.backends.pool import Pool
from tests.conftest import run_pipe, wait_for
from tests.fakes.llama import FakeLlama, free_port


@pytest.fixture
def three() -> Iterator[list[FakeLlama]]:
    servers = [FakeLlama(slots=2, latency=0.02).start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


def make_notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note{i:03}.md").write_text(f"Note number {i}. The harbour was busy.\n")
    return folder


def backend_args(servers: list[FakeLlama]) -> list[str]:
    return [arg for server in servers for arg in ("--backend", server.url)]


def done_per_path(pipe_home: Path) -> dict[str, int]:
    db = sqlite3.connect(pipe_home / "pipe.db")
    rows = db.execute(
        "SELECT path, COUNT(*) FROM history WHERE status = 'done' GROUP BY path"
    ).fetchall()
    db.close()
    return dict(rows)


def test_work_is_spread_over_every_server_within_its_slots(
    three: list[FakeLlama], tmp_path: Path, pipe_home: Path
) -> None:
    notes = make_notes(tmp_path / "notes", 30)
    r = run_pipe("run", "summarize-text", str(notes), *backend_args(three), "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Summary ") == 30
    assert all(server.generate_calls > 0 for server in three)
    assert all(server.max_active <= server.slots for server in three)
    assert sum(server.generate_calls for server in three) == 30
    assert sorted(done_per_path(pipe_home).values()) == [1] * 30
    assert "pool of 3" in r.stderr and "6 in flight" in r.stderr
    # The summary names what each server did, and so does `pipe runs`.
    line = next(x for x in r.stderr.splitlines() if "answers by backend: " in x)
    for server in three:
        assert f"{server.url.removeprefix('http://')} {server.generate_calls}" in line
    runs = run_pipe("runs", "--json")
    row = json.loads(runs.stdout.splitlines()[0])
    assert row["backends"] == {s.url: s.generate_calls for s in three}
    assert "answers by backend" in run_pipe("runs").stdout


def test_a_server_dying_mid_run_loses_no_file(tmp_path: Path, pipe_home: Path) -> None:
    servers = [FakeLlama(slots=2, latency=0.05).start() for _ in range(3)]
    victim = servers[1]
    notes = make_notes(tmp_path / "notes", 60)

    def kill_after_a_few() -> None:
        wait_for(lambda: victim.generate_calls >= 4, what="the victim answering a few")
        victim.kill()  # drops what it has in flight too

    killer = threading.Thread(target=kill_after_a_few, daemon=True)
    killer.start()
    try:
        r = run_pipe("run", "summarize-text", str(notes), *backend_args(servers))
    finally:
        for server in servers:
            server.stop()
    killer.join(5)
    assert victim.dead, "the run ended before the victim was killed: make it longer"
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Summary ") == 60
    assert done_per_path(pipe_home) == {str(p): 1 for p in sorted(notes.iterdir())}
    # The victim's last answers were dropped: what it is credited with is what it sent.
    line = next(x for x in r.stderr.splitlines() if "answers by backend: " in x)
    survivors = [s for s in servers if s is not victim]
    assert all(s.generate_calls > 0 for s in survivors)
    assert victim.url.removeprefix("http://") in line


def test_every_server_dying_stops_the_run_as_one_server_would(
    tmp_path: Path, pipe_home: Path
) -> None:
    servers = [FakeLlama(slots=2, latency=0.05).start() for _ in range(2)]
    notes = make_notes(tmp_path / "notes", 60)

    def kill_both() -> None:
        wait_for(lambda: sum(s.generate_calls for s in servers) >= 6, what="a few answers")
        for server in servers:
            server.kill()

    killer = threading.Thread(target=kill_both, daemon=True)
    killer.start()
    r = run_pipe("run", "summarize-text", str(notes), *backend_args(servers), "--wait", "1")
    killer.join(5)
    assert r.returncode == 3, r.stderr
    assert "every server of the pool is failing" in r.stderr
    assert "the backend stopped answering" in r.stderr
    done = done_per_path(pipe_home)
    assert 0 < len(done) < 60 and set(done.values()) == {1}
    again = FakeLlama(slots=2).start()  # the next run does the rest, and only the rest
    try:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", again.url)
    finally:
        again.stop()
    assert r.returncode == 0, r.stderr
    assert again.generate_calls == 60 - len(done)
    assert set(done_per_path(pipe_home).values()) == {1}


def test_a_busy_server_is_benched_and_comes_back(tmp_path: Path, pipe_home: Path) -> None:
    busy = FakeLlama(slots=1, failures=["busy", "busy"]).start()
    steady = FakeLlama(slots=1, latency=0.1).start()
    notes = make_notes(tmp_path / "notes", 40)
    try:
        r = run_pipe("run", "summarize-text", str(notes), *backend_args([busy, steady]))
    finally:
        busy.stop()
        steady.stop()
    assert r.returncode == 0, r.stderr
    assert busy.generate_calls > 2, "the busy server never got work again after its 503s"
    assert busy.max_active <= 1 and steady.max_active <= 1
    assert sorted(done_per_path(pipe_home).values()) == [1] * 40


def test_mixed_models_are_a_usage_error_unless_allowed(tmp_path: Path, pipe_home: Path) -> None:
    a = FakeLlama(slots=1, model="gemma-3-270m-q4_k_m.gguf").start()
    b = FakeLlama(slots=1, model="SmolLM2-135M-Instruct.Q4_1").start()
    notes = make_notes(tmp_path / "notes", 4)
    try:
        r = run_pipe("run", "summarize-text", str(notes), *backend_args([a, b]))
        assert r.returncode == 2, r.stderr
        assert a.url in r.stderr and b.url in r.stderr
        assert "gemma-3-270m" in r.stderr and "SmolLM2-135M" in r.stderr
        assert "--allow-mixed-models" in r.stderr
        assert a.generate_calls == b.generate_calls == 0
        r = run_pipe(
            "run", "summarize-text", str(notes), *backend_args([a, b]), "--allow-mixed-models"
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("Summary ") == 4
    finally:
        a.stop()
        b.stop()
    db = sqlite3.connect(pipe_home / "pipe.db")
    (model,) = db.execute("SELECT model FROM runs ORDER BY id DESC").fetchone()
    assert "gemma-3-270m" in model and "SmolLM2-135M" in model  # in the fingerprint too


def test_a_server_down_at_start_joins_when_it_comes_up(tmp_path: Path, pipe_home: Path) -> None:
    up = FakeLlama(slots=1, latency=0.2).start()
    late = FakeLlama(slots=2, latency=0.2, port=free_port())  # not listening yet
    late_url = f"http://127.0.0.1:{late._requested_port}"
    notes = make_notes(tmp_path / "notes", 40)  # 8 s for `up` alone

    def start_late() -> None:
        wait_for(lambda: up.generate_calls >= 2, what="the run under way")
        late.start()

    starter = threading.Thread(target=start_late, daemon=True)
    starter.start()
    try:
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", up.url, "--backend", late_url, "-v"
        )
    finally:
        starter.join(5)
        up.stop()
        late.stop()
    assert r.returncode == 0, r.stderr
    assert f"{late_url} does not answer yet" in r.stderr
    assert f"{late_url} answers now: it joins the pool" in r.stderr
    assert late.generate_calls > 0 and late.max_active <= 2
    assert up.generate_calls + late.generate_calls == 40
    assert done_per_path(pipe_home) == {str(p): 1 for p in sorted(notes.iterdir())}


def test_a_server_that_answers_but_cannot_serve_is_left_out(
    tmp_path: Path, pipe_home: Path
) -> None:
    up = FakeLlama(slots=2).start()
    notes = make_notes(tmp_path / "notes", 3)
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", up.url,
        "--backend", f"openai:{up.url}/nothing-here",
    )  # fmt: skip
    up.stop()
    assert r.returncode == 0, r.stderr
    assert "leaving openai:" in r.stderr and "out of the pool" in r.stderr
    assert up.generate_calls == 3


def test_no_server_answering_is_the_usual_error(tmp_path: Path) -> None:
    urls = []
    for _ in range(2):
        server = FakeLlama().start()
        urls.append(server.url)
        server.stop()
    notes = make_notes(tmp_path / "notes", 2)
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", urls[0], "--backend", urls[1],
        "--wait", "0",
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert "none of the 2 --backend servers answers" in r.stderr


# -- the Pool itself, with scripted members ------------------------------------------------
class Scripted(Backend):
    """A member whose answers are scripted: each call pops the next outcome."""

    def __init__(self, url: str, slots: int = 1, outcomes: list[object] | None = None) -> None:
        self.url = url
        self.info = ServerInfo(
            kind="llama.cpp", url=url, model="m", slots=slots, n_ctx=4096,
            abilities=frozenset({"text"}),
        )  # fmt: skip
        self.outcomes = list(outcomes or [])
        self.calls = 0

    def probe(self) -> ServerInfo:
        return self.info

    def complete(self, request: Request) -> Completion:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, Exception):
            raise outcome
        return Completion(f"{self.url} says {request.prompt}")

    def close(self) -> None:
        pass


def test_per_item_errors_pass_through_and_do_not_bench() -> None:
    a = Scripted("a", outcomes=[Rejected("bad grammar")])
    pool = Pool([a, Scripted("b")])
    with pytest.raises(Rejected):
        pool.complete(Request("x"))
    assert not pool.members[0].benched


def test_a_failure_is_retried_at_once_elsewhere_and_the_member_benched() -> None:
    now = [0.0]
    a = Scripted("a", outcomes=[Unreachable("refused")])
    b = Scripted("b")
    pool = Pool([a, b], clock=lambda: now[0])
    assert pool.complete(Request("x")).text == "b says x"
    assert pool.members[0].benched
    assert pool.complete(Request("y")).text == "b says y"  # a sits out its bench
    assert a.calls == 1
    now[0] = 10.0  # the bench is over: a is least busy again
    assert pool.complete(Request("z")).text == "a says z"
    assert pool.answered() == {"a": 1, "b": 2}


def test_every_member_benched_raises_for_the_run_to_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "BENCH_FIRST", 60.0)
    monkeypatch.setattr(pool_module, "ALL_DOWN_WAIT", 0.05)
    pool = Pool([Scripted("a", outcomes=[Busy("503")]), Scripted("b", outcomes=[Busy("503")])])
    with pytest.raises(Busy, match="every server of the pool"):
        pool.complete(Request("x"))
    a = Scripted("a", outcomes=[Unreachable("refused")])
    pool = Pool([a, Scripted("b", outcomes=[Busy("503")])])
    with pytest.raises(Unreachable, match="every server of the pool"):
        pool.complete(Request("x"))


def test_members_that_keep_failing_do_not_hold_a_request_forever() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 5.0  # every bench is over by the next look
        return now[0]

    a = Scripted("a", outcomes=[Unreachable("refused")] * 99)
    with pytest.raises(Unreachable):
        Pool([a], clock=clock).complete(Request("x"))
    assert a.calls <= 1 + pool_module.HOPS + 1


def test_a_late_member_is_tried_after_each_bench_and_joins_when_it_answers() -> None:
    now = [0.0]
    tries: list[str] = []
    said: list[str] = []

    def join(url: str) -> tuple[Backend, int]:
        tries.append(url)
        if len(tries) == 1:
            raise Unreachable("refused")
        return Scripted(url, slots=3), 3

    a = Scripted("a", slots=2, outcomes=["ok", "ok", "ok", Unreachable("refused")])
    late = [("b", Unreachable("refused"))]
    pool = Pool([a], late=late, join=join, say=said.append, clock=lambda: now[0])
    assert pool.info is not None and pool.info.slots == 4  # b is expected with a's 2
    assert pool.complete(Request("x")).text == "a says x" and tries == []  # not tried yet
    now[0] = 1.0  # its first bench is over: the next request has it tried, and carries on
    assert pool.complete(Request("y")).text == "a says y"
    wait_for(lambda: tries == ["b"] and not pool.members[1].joining, what="the first try")
    assert pool.members[1].benched and said == []  # refused: benched for longer
    now[0] = 1.5
    assert pool.complete(Request("z")).text == "a says z" and tries == ["b"]
    now[0] = 3.0
    # This request has b tried again, and a fails it: it waits for b, which joins meanwhile.
    assert pool.complete(Request("w")).text == "b says w"
    assert said == ["b answers now: it joins the pool"] and pool.members[1].slots == 3
    assert pool.complete(Request("v")).text in ("a says v", "b says v")
    pool.close()


def test_a_late_member_with_another_model_stays_out() -> None:
    now = [0.0]
    tries: list[str] = []
    said: list[str] = []

    def join(url: str) -> tuple[Backend, int]:
        tries.append(url)
        other = Scripted(url)
        assert other.info is not None
        other.info = replace(other.info, model="another")
        return other, 1

    pool = Pool(
        [Scripted("a")], late=[("b", Unreachable("refused"))], join=join, say=said.append,
        clock=lambda: now[0],
    )  # fmt: skip
    for t in (1.0, 20.0, 40.0):
        now[0] = t
        assert pool.complete(Request("x")).text == "a says x"
        wait_for(lambda: not pool.members[1].joining, what="the try")
    assert tries == ["b"]  # told once, never tried again
    assert said == [
        "warning: b answers now but stays out of the pool: it serves another, the pool m"
    ]
    assert pool.answered() == {"a": 3, "b": 0}
    pool.close()


def test_pictures_go_out_through_the_pool_too() -> None:
    class Drawing(Scripted):
        def draw(self, request: DrawRequest) -> Picture:
            self.calls += 1
            outcome = self.outcomes.pop(0) if self.outcomes else "ok"
            if isinstance(outcome, Exception):
                raise outcome
            return Picture.of(b"png", 1, 1, request.seed)

    a, b = Drawing("a", outcomes=[Unreachable("refused")]), Drawing("b")
    pool = Pool([a, b])
    assert pool.draw(DrawRequest("a heron", seed=7)).seed == 7
    assert pool.answered() == {"a": 0, "b": 1}


def test_a_sampler_counts_only_if_every_member_has_it() -> None:
    class Sampling(Scripted):
        def __init__(self, url: str, samplers: set[str]) -> None:
            super().__init__(url)
            self.samplers = samplers
            self.asked = 0

        def sampler(self, wanted: str) -> str | None:
            self.asked += 1
            return wanted if wanted in self.samplers else None

    a = Sampling("a", {"Euler", "DPM++ 2M"})
    b = Sampling("b", {"Euler"})
    pool = Pool([a, b])
    assert pool.sampler("Euler") == "Euler"
    assert pool.sampler("DPM++ 2M") is None  # b would draw with another one, silently
    for _ in range(5):
        pool.sampler("Euler")  # asked once per picture: found once, then remembered
    assert (a.asked, b.asked) == (2, 2)


def test_slots_add_up_and_n_ctx_is_the_smallest() -> None:
    a, b = Scripted("a", slots=2), Scripted("b", slots=3)
    assert b.info is not None
    b.info = ServerInfo(**{**b.info.__dict__, "n_ctx": 2048})
    pool = Pool([a, b])
    assert pool.info is not None
    assert pool.info.slots == 5 and pool.info.n_ctx == 2048
