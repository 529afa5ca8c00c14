"""The bench as a library, against fake servers of known latency: what reaches the server
(the persona, the paragraph, a first line new to every cache), and figures within 10% of
what the fake was set to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.bench import biotics
from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.bench.runner import Bench, Plan
from pipeline.bench.targets import Connection, choose
from pipeline.personas.persona import Persona
from tests.fakes.llama import FakeKobold, FakeLlama, dead_url
from tests.fakes.sd import FakeSd

PERSONA = Persona(
    name="Librarian",
    user="Ada",
    system="You are Librarian, who explains things plainly to Ada.",
    after="Stay in character.",
    source="test",
)
LATENCY = 0.25
HOW = Connection(wait=0, timeout=30)


@pytest.fixture(autouse=True)
def no_default_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", dead_url())
    monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", dead_url())


@pytest.fixture
def slow_llama() -> Iterator[FakeLlama]:
    with FakeLlama(latency=LATENCY) as server:
        yield server


def bench(**plan: object) -> tuple[Bench, list[str]]:
    lines: list[str] = []
    run = Bench(PERSONA, "portrait of Librarian", Plan(**plan), failed=lines.append)  # type: ignore[arg-type]
    return run, lines


def test_each_request_is_new_to_the_server_and_carries_the_persona(slow_llama: FakeLlama) -> None:
    run, failed = bench()
    outcome = run.run(choose([slow_llama.url], None, None, HOW, print))
    assert failed == [] and outcome.reached == 1
    assert sum(slow_llama.prompts.values()) == 1 + 3  # one warm-up, three counted
    assert set(slow_llama.prompts.values()) == {1}  # no prompt twice: no cache flatters
    first_lines = set()
    for prompt in slow_llama.prompts:
        assert PERSONA.system in prompt and biotics.PARAGRAPH in prompt
        assert prompt.index(biotics.QUESTION) < prompt.index(PERSONA.after)
        first_lines.add(prompt.split(f"Bench {run.nonce}, run ")[1][:2])
    assert first_lines == {"0.", "1.", "2.", "3."}
    n_predict = {body["n_predict"] for path, body in slow_llama.requests if path == "/completion"}
    assert n_predict == {biotics.MAX_TOKENS}


def within(figure: float | None, truth: float) -> bool:
    return figure is not None and truth <= figure <= truth * 1.1


def test_text_and_picture_figures_are_within_10_percent_of_the_fakes_latency(
    slow_llama: FakeLlama,
) -> None:
    with FakeKobold(latency=0.3) as kobold, FakeSd(delay=0.2) as sd:
        run, failed = bench(size=64, steps=1)  # the fake draws these at once
        urls = [slow_llama.url, kobold.url]
        kept: list[Figures] = []
        outcome = run.run(choose(urls, sd.url, None, HOW, print), keep=kept.append)
    assert failed == [] and outcome.reached == 3 and kept == outcome.figures
    by = {(f.backend, f.test): f for f in kept}
    assert set(by) == {(slow_llama.url, BIOTICS), (kobold.url, BIOTICS), (sd.url, SD_YOU)}
    llama = by[slow_llama.url, BIOTICS]
    assert within(llama.seconds, LATENCY) and llama.runs == 3
    assert llama.prompt_tokens and llama.prompt_tokens > 200
    assert llama.generated_tokens and llama.generated_per_second and llama.prompt_per_second
    # The fake says it worked 2 ms (1 ms prompt, 1 ms generation): the rest is overhead.
    assert llama.overhead_ms is not None and within(llama.overhead_ms + 2, LATENCY * 1000)
    assert within(by[kobold.url, BIOTICS].seconds, 0.3)
    picture = by[sd.url, SD_YOU]
    assert within(picture.seconds, 0.2) and (picture.width, picture.height) == (64, 64)
    assert picture.steps == 1 and picture.model == "random-sd15"
    assert [d["seed"] for d in sd.drawn] == [1, 2, 3]


def test_a_down_backend_is_one_line_and_the_others_still_run(slow_llama: FakeLlama) -> None:
    down = dead_url()
    run, failed = bench()
    outcome = run.run(choose([down, slow_llama.url], None, None, HOW, print))
    assert len(failed) == 1 and down in failed[0]
    assert outcome.failed == 1 and outcome.reached == 1
    assert [f.backend for f in outcome.figures] == [slow_llama.url]


def test_a_backend_failing_mid_way_is_one_line_and_the_others_still_run() -> None:
    # The warm-up and the first request answer, the second fails for good.
    with FakeLlama(failures=["", "", "500", "500", "500"]) as failing, FakeKobold() as kobold:
        run, failed = bench()
        outcome = run.run(choose([failing.url, kobold.url], None, None, HOW, print))
    assert len(failed) == 1 and failing.url in failed[0]
    assert [f.backend for f in outcome.figures] == [kobold.url]
    assert (outcome.reached, outcome.failed) == (2, 1)


def test_with_nothing_given_every_default_port_answering_is_benched(
    slow_llama: FakeLlama, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeKobold() as kobold, FakeSd() as sd:
        monkeypatch.setenv("PIPE_DEFAULT_BACKENDS", f"{dead_url()} {slow_llama.url} {kobold.url}")
        monkeypatch.setenv("PIPE_DEFAULT_IMAGE_BACKENDS", f"{kobold.url} {sd.url}")
        run, failed = bench()
        outcome = run.run(choose([], None, None, HOW, print))
    assert failed == []
    assert [(f.backend, f.test) for f in outcome.figures] == [
        (slow_llama.url, BIOTICS),
        (kobold.url, BIOTICS),
        (sd.url, SD_YOU),
    ]


def test_portraits_are_drawn_as_the_recipes_draw_unless_told() -> None:
    from pipeline.steps.drawing import KEYS

    plan = Plan()
    assert (plan.size, plan.steps, plan.repeat, plan.keep) == (512, 20, 3, None)
    assert (KEYS["width"].default, KEYS["steps"].default) == (plan.size, plan.steps)


@pytest.mark.parametrize(
    ("args", "layers"),
    [((), None), (("-ngl", "18"), 18), (("--n-gpu-layers=33",), 33), (("-ngl", "auto"), None)],
)
def test_gpu_layers_are_known_from_what_pipe_started_the_server_with(
    args: tuple[str, ...], layers: int | None
) -> None:
    from pathlib import Path

    from pipeline.bench.targets import gpu_layers
    from pipeline.servers.managed import ManagedSpec

    assert gpu_layers(ManagedSpec(Path("m.gguf"), "llama-server", extra_args=args)) == layers
