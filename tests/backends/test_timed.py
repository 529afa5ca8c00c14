"""`Backend.complete_timed` against fakes of known latency (tests/fakes/pacing.py): each
figure pipe reports is no less than what the fake was set to take, and within 10% above it;
and hostile streams fail with one BackendError line, within the backend's timeout."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pipeline.backends import BackendError, ContextOverflow, Request, connect
from tests.fakes.llama import FakeKobold, FakeLlama, FakeServer, count_tokens
from tests.fakes.openai import FakeOpenAI

PROMPT_TOKEN = 0.002  # seconds per prompt token, as the fakes are set
TOKEN = 0.02  # seconds per generated token
ANSWER = "The harbour was busy, and the boats came in at dusk. "  # 53 bytes: 18 tokens
REQUEST = Request("The antibiotics paragraph. " * 55, system="You are a librarian.")

KINDS: dict[str, tuple[type[FakeServer], dict[str, Any]]] = {
    "llama.cpp": (FakeLlama, {}),
    "llamafile": (FakeLlama, {"llamafile": "0.8.1"}),
    "koboldcpp": (FakeKobold, {}),
    "openai": (FakeOpenAI, {}),
    "llama.cpp /v1": (FakeOpenAI, {"owned_by": "llamacpp"}),
}


def paced(kind: str, **kwargs: Any) -> FakeServer:
    cls, extra = KINDS[kind]
    return cls(
        prompt_token_seconds=PROMPT_TOKEN,
        token_seconds=TOKEN,
        answer=lambda prompt: ANSWER,
        **extra,
        **kwargs,
    )


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def within(measured: float | None, truth: float) -> None:
    """No less than the truth (a fake cannot be faster than it was set), at most 10% more."""
    assert measured is not None
    assert truth <= measured <= truth * 1.1, (measured, truth)


def test_complete_timed_reports_what_the_fake_was_set_to_take(kind: str) -> None:
    with paced(kind) as fake:
        backend = connect(fake.url)
        timed = backend.complete_timed(REQUEST)
    [done] = fake.paced
    n_prompt, n_answer = done.prompt_tokens, count_tokens(ANSWER)
    assert done.tokens == n_answer == 18
    if not isinstance(fake, FakeOpenAI):  # the server counted the prompt pipe wrapped
        assert n_prompt == count_tokens(backend.raw_prompt(REQUEST)[0])
    within(timed.first_token, n_prompt * PROMPT_TOKEN + TOKEN)
    within(timed.seconds, n_prompt * PROMPT_TOKEN + n_answer * TOKEN)
    assert timed.completion.text == ANSWER
    assert timed.completion.completion_tokens == n_answer
    if kind == "openai":  # no timings of its own: pipe's clock only
        assert timed.server is None and timed.completion.prompt_tokens == n_prompt
        return
    server = timed.server
    assert server is not None
    assert (server.prompt_tokens, server.generated_tokens) == (n_prompt, n_answer)
    within(server.prompt_seconds, n_prompt * PROMPT_TOKEN)
    within(server.generation_seconds, n_answer * TOKEN)
    assert server.seconds is not None and server.seconds <= timed.seconds


def test_koboldcpp_figures_leave_out_the_prefix_it_reused_from_the_last_prompt() -> None:
    """koboldcpp keeps the prefix a prompt shares with the one before ("fast forward") and
    reports milliseconds per token it processed: pipe counts those tokens, so a second
    request that differs after the chat format's opening is timed for what it cost."""
    with paced("koboldcpp") as fake:
        backend = connect(fake.url)
        backend.complete_timed(REQUEST)
        second = Request("Another paragraph. " * 80, system=REQUEST.system)
        timed = backend.complete_timed(second)
    prompts = [backend.raw_prompt(r)[0] for r in (REQUEST, second)]
    shared = next(n for n, (a, b) in enumerate(zip(*prompts, strict=False)) if a != b) // 3
    processed = count_tokens(prompts[1]) - shared
    assert fake.paced[-1].prompt_tokens == processed and shared > 3
    server = timed.server
    assert server is not None and server.prompt_tokens == processed
    assert timed.completion.prompt_tokens == count_tokens(prompts[1])
    within(server.prompt_seconds, processed * PROMPT_TOKEN)
    within(timed.first_token, processed * PROMPT_TOKEN + TOKEN)


def test_what_each_kind_sends_to_be_timed() -> None:
    """The same request as complete() sends, streamed; llama.cpp without its prompt cache."""
    request = Request("Explain.", system="Be brief.", stop=("\n\n",), grammar='root ::= "a"')
    with paced("llama.cpp") as fake:
        backend = connect(fake.url)
        backend.complete(request)
        backend.complete_timed(request)
    plain, streamed = (body for path, body in fake.requests if path == "/completion")
    assert streamed == {**plain, "stream": True, "cache_prompt": False}
    with paced("koboldcpp") as kobold:
        backend = connect(kobold.url)
        backend.complete(request)
        backend.complete_timed(request)
    paths = [path for path, _ in kobold.requests]
    streamed_at = paths.index("/api/extra/generate/stream")
    assert paths[streamed_at - 1] == "/api/v1/generate"
    assert set(paths[streamed_at + 1 :]) == {"/api/extra/perf", "/api/extra/tokencount"}
    plain, streamed = (body for path, body in kobold.requests if "generate" in path)
    assert plain.pop("genkey") != streamed.pop("genkey") and plain == streamed
    with paced("openai") as openai:
        backend = connect(openai.url)
        backend.complete(request)
        backend.complete_timed(request)
    plain, streamed = openai.bodies
    options = {"stream": True, "stream_options": {"include_usage": True}}
    assert streamed == {**plain, **options}


def test_the_old_server_and_the_new_stream_alike_and_a_long_prompt_is_still_overflow() -> None:
    with FakeLlama(n_ctx=300) as fake:
        backend = connect(fake.url)
        with pytest.raises(ContextOverflow):
            backend.complete_timed(Request("x" * 3000))
        timed = backend.complete_timed(Request("hi", max_tokens=8))
    assert timed.completion.text.startswith("Summary") and timed.completion.stop_reason == "eos"
    assert timed.first_token is not None and timed.first_token <= timed.seconds


CHEAP = ["garbage", "no-end", "bad-utf8", "drop", "500"]
SLOW = ["endless", "hang", "huge", "long-line"]
TIMEOUT = 2.0


@pytest.mark.parametrize("failure", CHEAP)
def test_a_hostile_stream_is_one_backend_error(kind: str, failure: str) -> None:
    assert_one_error(kind, failure)


@pytest.mark.parametrize("kind", ["llama.cpp", "koboldcpp", "openai"])
@pytest.mark.parametrize("failure", SLOW)
def test_an_endless_stalled_or_huge_stream_is_one_backend_error_in_time(
    kind: str, failure: str
) -> None:
    assert_one_error(kind, failure)


def assert_one_error(kind: str, failure: str) -> None:
    with paced(kind, failures=[failure]) as fake:
        backend = connect(fake.url, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(BackendError) as error:
            backend.complete_timed(REQUEST)
        took = time.monotonic() - started
        message = str(error.value)
        assert message and "\n" not in message and fake.url in message
        assert took < TIMEOUT + 3  # the timeout, and the time to notice it
        answered = backend.complete_timed(REQUEST)  # the next request is not disturbed
        assert answered.completion.text == ANSWER
