"""`complete_timed` against the real servers (tests/real_servers.py): llama-server, the old
server llamafile runs, and koboldcpp with SmolLM2. The figures must agree with what each
server says of itself."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline.backends import Request, connect
from pipeline.backends.base import Backend, Timed
from tests import real_servers

pytestmark = pytest.mark.real

PARAGRAPH = (
    "Antibiotics are medicines that fight infections caused by bacteria in humans and"
    " animals by either killing the bacteria or making it difficult for the bacteria to grow"
    " and multiply. They do not work on viruses, such as the common cold or the flu."
)


def request(n: int) -> Request:
    # A first line of its own, so no prompt prefix of an earlier request can be reused.
    return Request(f"Request {n}.\n{PARAGRAPH}\nExplain the above in one sentence.", max_tokens=16)


def check_shape(backend: Backend, timed: Timed, prompt: str) -> None:
    assert timed.completion.text
    assert timed.first_token is not None and 0 < timed.first_token <= timed.seconds
    server = timed.server
    assert server is not None and server.seconds is not None
    assert server.seconds <= timed.seconds
    counted = backend.count_tokens(prompt)
    assert counted is not None and server.prompt_tokens is not None
    assert abs(server.prompt_tokens - counted) <= 1  # the BOS, counted or not
    assert server.generated_tokens == timed.completion.completion_tokens


@pytest.mark.parametrize("which", ["llama-server", "llamafile-0.8.1", "llamafile-0.8.2"])
def test_llama_cpp_servers_time_a_streamed_request(which: str, tmp_path: Path) -> None:
    if which == "llama-server":
        server = real_servers.llama_server(tmp_path)
    else:
        server = real_servers.llamafile_server(tmp_path, version=which.split("-")[1])
    with server:
        backend = connect(server.url, timeout=120)
        for n in range(2):  # the second would be cheaper if the prompt cache were used
            req = request(n)
            timed = backend.complete_timed(req)
            check_shape(backend, timed, backend.raw_prompt(req)[0])
            assert timed.completion.timings.get("cache_n", 0) == 0
        backend.close()


def test_koboldcpp_times_a_streamed_request_as_its_perf_says(tmp_path: Path) -> None:
    """Twice: the second prompt shares its chat format's opening with the first, which
    koboldcpp reuses; the figures count only what it processed, so its prompt time fits
    within the time to the first token."""
    with real_servers.koboldcpp(tmp_path) as server:
        backend = connect(server.url, timeout=120)
        for n in range(2):
            req = request(n)
            timed = backend.complete_timed(req)
            perf = httpx.get(f"{server.url}/api/extra/perf", timeout=10).json()
            prompt = backend.raw_prompt(req)[0]
            counted = backend.count_tokens(prompt)
            figures = timed.server
            assert figures is not None and counted is not None and timed.first_token
            assert figures.prompt_tokens is not None and figures.prompt_seconds is not None
            assert timed.completion.prompt_tokens == counted
            if n == 0:
                check_shape(backend, timed, prompt)
            else:  # "<|im_start|>user\nRequest " was kept from the first
                assert 1 < counted - figures.prompt_tokens < 10
            assert figures.prompt_seconds <= timed.first_token
            assert figures.generated_tokens == perf["last_token_count"]
            processed = figures.prompt_tokens
            assert figures.prompt_seconds == pytest.approx(perf["last_process"] * processed / 1000)
            assert figures.generation_seconds == pytest.approx(
                perf["last_eval"] * perf["last_token_count"] / 1000
            )
        backend.close()
