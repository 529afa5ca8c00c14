"""Integration: the keywords grammar on real servers' GBNF parsers (a text model sent the
grammar with a text prompt must answer what the grammar allows), and tag-images on a real
llama.cpp server that sees (a random-weight projector: the keywords are nonsense by design,
the grammar, the image path and the normalising are real)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from pipeline import keywords
from pipeline.backends import Request, connect
from pipeline.steps.keywords import MAX_KEYWORDS, MIN_KEYWORDS, keyword_grammar
from tests import real_servers
from tests.conftest import ROOT, run_pipe
from tests.fakes.llama import free_port

pytestmark = pytest.mark.real

# The grammar's language as a regular expression (keyword_grammar's rules, one for one).
CHAR = "[A-Za-z0-9\u0080-\U0010ffff]"
WORD = f"{CHAR}+(?:-{CHAR}+){{0,2}}"
KEYWORD = f"{WORD}(?: {WORD}){{0,2}}"
ALPHABET = re.compile(f"(?:{CHAR}|[ ,-])*")


def allowed(answer: str, low: int, high: int, stop_reason: str | None) -> bool:
    """Whether the grammar allows `answer`: whole, or, cut by max_tokens, as a beginning
    (its last keyword unfinished)."""
    if stop_reason != "limit":
        return (
            re.fullmatch(f" ?{KEYWORD}(?:, {KEYWORD}){{{low - 1},{high - 1}}}", answer) is not None
        )
    head, _, tail = answer.rpartition(", ")
    whole = re.fullmatch(f" ?{KEYWORD}(?:, {KEYWORD}){{0,{high - 2}}}", head) or not head
    return bool(whole) and ALPHABET.fullmatch(tail) is not None


def smollm2_llama_server(tmp: Path) -> real_servers.RealServer:
    port = free_port()
    binary, model = real_servers.llama_server_binary(), real_servers.smollm2_model()
    command = real_servers._llama_command(binary, model, port, 1024, 1)
    return real_servers.RealServer(command, "/health", tmp / "llama-server.log", port)


PROMPT = (
    "List five to twelve keywords for a photo of a brown dog running on a sandy beach at"
    " sunset near Nice, separated by commas."
)


@pytest.mark.parametrize(
    "make",
    [
        smollm2_llama_server,
        partial(real_servers.llamafile_server, version="0.8.1"),  # no x{m,n}: pipe expands it
        real_servers.koboldcpp,
    ],
    ids=["llama.cpp", "llamafile-0.8.1", "koboldcpp"],
)
def test_a_real_server_parses_the_grammar_and_answers_within_it(
    make: Callable[[Path], real_servers.RealServer], tmp_path: Path
) -> None:
    grammar = keyword_grammar(MIN_KEYWORDS, MAX_KEYWORDS)
    with make(tmp_path) as server:
        backend = connect(server.url)
        try:
            completion = backend.complete(
                Request(prompt=PROMPT, system="You tag photos.", max_tokens=120, grammar=grammar)
            )
        finally:
            backend.close()
    answer = completion.text
    assert allowed(answer, MIN_KEYWORDS, MAX_KEYWORDS, completion.stop_reason), answer
    assert 1 <= len(keywords.normalise(answer)) <= MAX_KEYWORDS, answer


def test_the_embedded_model_parses_the_grammar_and_answers_within_it(tmp_path: Path) -> None:
    """The embedded model (SmolLM2 through cyllama, text only: tag-images cannot run on it)
    sent the grammar with a text prompt."""
    real_servers.need_embedded_model()
    r = run_pipe(
        "run", "summarize-text", "--json",
        "--set", f"ask.grammar={keyword_grammar(MIN_KEYWORDS, MAX_KEYWORDS)}",
        "--set", "ask.max_tokens=120", "--set", "ask.prompt={text}",
        input=f"{PROMPT}\n".encode(),
        env={"PIPE_EMBEDDED_MODEL": str(real_servers.smollm2_model())},
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [record] = [json.loads(line) for line in r.stdout.splitlines()]
    stop = "limit" if record["completion_tokens"] >= 120 else "eos"
    assert allowed(record["answer"], MIN_KEYWORDS, MAX_KEYWORDS, stop), record


def test_the_grammar_checker_knows_the_grammar() -> None:
    """The checker above, on answers the grammar allows and refuses."""
    assert allowed(" dog, beach, sunset, sand, Nice", 5, 12, "eos")
    assert allowed("日の出, sea-shore, a b c, x, y", 5, 12, None)
    assert not allowed("dog, beach, sunset, sand", 5, 12, "eos")  # too few
    assert not allowed("dog, beach, sunset, sand, a b c d", 5, 12, "eos")  # four words
    assert not allowed("dog, beach, sunset, sand, Nice.", 5, 12, "eos")
    assert allowed("dog, beach, sunset-is-the-sunsetisis", 5, 12, "limit")
    assert not allowed("dog; beach, sunset", 5, 12, "limit")


def test_tag_images_on_a_real_llama_server_that_sees(tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    shutil.copy2(ROOT / "samples" / "photos" / "DSCN0010.jpg", folder / "DSCN0010.jpg")
    projector = real_servers.projector("tiny-mmproj-gemma3-270m.gguf")
    recipe = str(ROOT / "recipes" / "tag-images.toml")
    with real_servers.llama_server(tmp_path, "--mmproj", str(projector)) as server:
        r = run_pipe("run", recipe, str(folder), "--backend", server.url, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    [record] = [json.loads(line) for line in r.stdout.splitlines()]
    assert record["status"] == "done", record
    found = keywords.split(record["answer"])
    assert 1 <= len(found) <= MAX_KEYWORDS and found == keywords.normalise(record["answer"])
