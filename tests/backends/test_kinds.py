"""Recognising llama.cpp and koboldcpp, and their backends' probes, errors and token counts."""

from __future__ import annotations

import pytest

from pipeline.backends import (
    Busy,
    ContextOverflow,
    Request,
    Unreachable,
    connect,
    detect,
)
from tests.fakes.llama import FakeKobold, FakeLlama, dead_url


def test_detect_each_kind() -> None:
    with FakeLlama() as llama, FakeKobold() as kobold:
        assert detect(llama.url) == "llama.cpp"
        assert detect(kobold.url) == "koboldcpp"
    with pytest.raises(Unreachable):
        detect(dead_url())


def test_llama_backend_probe_and_errors() -> None:
    with FakeLlama(slots=3, n_ctx=300, failures=["busy"]) as server:
        backend = connect(server.url)
        info = backend.info
        assert info and info.slots == 3 and info.n_ctx == 300 and info.chat_format == "gemma"
        with pytest.raises(Busy):
            backend.complete(Request("hi"))
        with pytest.raises(ContextOverflow) as e:
            backend.complete(Request("x" * 3000))
        assert e.value.n_ctx == 300 and (e.value.prompt_tokens or 0) > 300
        done = backend.complete(Request("hi", max_tokens=8))
        assert done.text.startswith("Summary") and done.stop_reason == "eos"
        assert backend.count_tokens("abcdef") == 2


def test_kobold_backend_probe_generate_and_tokencount() -> None:
    with FakeKobold(n_ctx=2048, failures=["500"]) as server:
        backend = connect(server.url)
        assert backend.info and backend.info.kind == "koboldcpp" and backend.info.n_ctx == 2048
        assert backend.info.model == "SmolLM2-135M-Instruct.Q4_1"
        with pytest.raises(Exception, match="HTTP 500"):
            backend.complete(Request("hi"))
        assert backend.complete(Request("hi")).text.startswith("Summary")
        assert backend.count_tokens("abcdef") == 2
