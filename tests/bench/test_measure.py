"""From timed requests to figures: medians, the server's counts and clocks, and what is
left None when nothing tells it."""

from __future__ import annotations

import pytest

from pipeline.backends import Completion, ServerTimings, Timed
from pipeline.bench.measure import biotics_figures, median, median_int, one_request

LLAMA_TIMINGS = {"prompt_n": 400, "prompt_ms": 800.0, "predicted_n": 40, "predicted_ms": 2000.0}


def test_the_server_s_own_timings_give_the_rates_and_pipe_s_overhead() -> None:
    timed = Timed(Completion("x", 400, 40), 2.9, server=ServerTimings(400, 0.8, 40, 2.0))
    one = one_request(timed)
    assert one.prompt_tokens == 400 and one.generated_tokens == 40
    assert one.prompt_per_second == pytest.approx(500.0)
    assert one.generated_per_second == pytest.approx(20.0)
    assert one.overhead_ms == pytest.approx(100.0)
    assert one.prompt_rate_from == "server"


def test_llama_cpp_timings_in_the_answer_count_when_the_backend_filled_none() -> None:
    timed = Timed(Completion("x", 400, 40, timings=LLAMA_TIMINGS), 3.0)
    one = one_request(timed)
    assert one.prompt_per_second == pytest.approx(500.0)
    assert one.generated_per_second == pytest.approx(20.0)
    assert one.overhead_ms == pytest.approx(200.0)


def test_a_streamed_answer_without_server_timings_is_timed_by_its_first_piece() -> None:
    timed = Timed(Completion("x", 300, 21), 3.0, first_token=1.0)
    one = one_request(timed)
    assert one.prompt_per_second == pytest.approx(300.0) and one.prompt_rate_from == "first token"
    assert one.generated_per_second == pytest.approx(10.0)  # 20 tokens after the first, in 2 s
    assert one.overhead_ms is None


def test_a_silent_server_leaves_the_rates_unknown() -> None:
    one = one_request(Timed(Completion("x"), 1.5))
    assert one.seconds == 1.5
    assert (one.prompt_tokens, one.prompt_per_second, one.generated_per_second) == (None,) * 3
    assert one.overhead_ms is None and one.first_token is None


def test_figures_are_medians_so_one_slow_request_does_not_move_them() -> None:
    timed = [
        Timed(Completion("x", 400, 40, timings={**LLAMA_TIMINGS, "prompt_n": 400 + i}), seconds)
        for i, seconds in enumerate([3.0, 30.0, 3.2])
    ]
    figures = biotics_figures(timed)
    assert figures["seconds"] == pytest.approx(3.2) and figures["runs"] == 3
    assert figures["prompt_tokens"] == 401  # a count stays a count
    assert figures["first_token_seconds"] is None
    assert figures["settings"] == {"prompt_rate_from": "server", "streamed": False}


def test_median_helpers_skip_what_is_unknown() -> None:
    assert median([None, 1.0, 3.0, None]) == 2.0 and median([None]) is None
    assert median_int([1, 2, 3, 4]) == 2 and median_int([]) is None
