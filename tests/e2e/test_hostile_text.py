"""End to end: text from hostile servers (lone surrogates, echoed secrets) through the real CLI
against the fakes."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_pipe
from tests.fakes.llama import FakeLlama
from tests.fakes.openai import FakeOpenAI

# JSON's `\ud800` escapes decode to lone surrogates, which no UTF-8 file or terminal can hold.
SURROGATES = "a fox \ud800 in the \udfff snow"
REPLACED = "a fox \ufffd in the \ufffd snow"


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("output", ["print", "json", "sidecar", "xmp"])
def test_lone_surrogates_become_replacement_characters(
    output: str, tmp_path: Path, pipe_home: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if output == "xmp":
        recipe = "describe-images"
        shutil.copy2(ROOT / "samples" / "photos" / "DSCN0010.jpg", folder / "DSCN0010.jpg")
        written = folder / "DSCN0010.jpg.xmp"
    else:
        recipe = "summarize-text"
        (folder / "note.md").write_text("The harbour was busy today.\n")
        written = folder / "note.md.summary.txt"
    args = {"print": [], "json": ["--json"], "sidecar": ["--write", "sidecar"]}
    extra = args.get(output, ["--write", "xmp"])
    hostile = FakeLlama(vision=output == "xmp", answer=lambda _: SURROGATES, model="m\udfff.gguf")
    with hostile as server:
        command = ("run", recipe, str(folder), "--backend", server.url, *extra)
        r = run_pipe(*command)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and server.generate_calls == 1
        again = run_pipe(*command)
        assert again.returncode == 0, again.stderr
        assert server.generate_calls == 1  # the answer was recorded: the re-run used it
    if output == "print":
        assert REPLACED in r.stdout
    elif output == "json":
        assert [(rec["answer"], rec["model"]) for rec in records(r.stdout)] == [
            (REPLACED, "m\ufffd.gguf")  # the name the server gives its model too
        ]
    elif output == "sidecar":
        assert written.read_text(encoding="utf-8").strip() == REPLACED
    else:
        assert REPLACED in written.read_text(encoding="utf-8")
    with sqlite3.connect(pipe_home / "pipe.db") as db:
        db.text_factory = bytes
        # FTS5's own tables (search_index_data, _idx...) hold its binary segments.
        tables = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'search_index_%'"
        ).fetchall()
        for (table,) in tables:
            for row in db.execute(f"SELECT * FROM {table.decode()}"):
                for value in row:
                    if isinstance(value, bytes):
                        value.decode("utf-8")  # every stored text is valid UTF-8


KEY = "sk-test-echoed-4b1d9e"
PASSWORD = "pw-echoed-77c3"


def everything_stored(db_path: Path) -> str:
    """Every table of the database, dumped."""
    with sqlite3.connect(db_path) as db:
        return "\n".join(db.iterdump())


def test_an_echoed_api_key_or_url_password_is_never_shown_or_stored(
    notes: Path, pipe_home: Path
) -> None:
    env = {"VLLM_KEY": KEY}
    key_args = ("--api-key-env", "VLLM_KEY")
    secrets = [KEY, PASSWORD, base64.b64encode(f"me:{PASSWORD}".encode()).decode()]
    shown: list[str] = []
    # A server that refuses each request with a 500 repeating the key it was sent.
    with FakeOpenAI(api_key=KEY, echo_auth=True, failures=["500"] * 3) as server:
        url = f"openai:{server.url}"
        command = ("run", "summarize-text", str(notes), "--backend", url, *key_args)
        r = run_pipe(*command, "--retries", "0", env=env)
        assert r.returncode == 1 and "Internal Server Error: Bearer ***" in r.stderr, r.stderr
        shown += [r.stdout, r.stderr]
    # One that refuses the key itself (401), echoing it, at the run's start and in doctor.
    with FakeOpenAI(api_key="sk-the-right-one", echo_auth=True) as server:
        url = f"openai:{server.url}"
        r = run_pipe("run", "summarize-text", str(notes), "--backend", url, *key_args, env=env)
        assert r.returncode == 3 and "401" in r.stderr, r.stderr
        doctor = run_pipe("doctor", "--backend", url, *key_args, env=env)
        assert doctor.returncode == 3 and "401" in doctor.stdout + doctor.stderr
        shown += [r.stdout, r.stderr, doctor.stdout, doctor.stderr]
    # A backend URL with user:password@, which httpx sends as Basic auth (echoed too).
    with FakeOpenAI(echo_auth=True, failures=["500"]) as server:
        url = f"openai:{server.url.replace('//', f'//me:{PASSWORD}@')}"
        r = run_pipe("run", "summarize-text", str(notes), "--backend", url, "--retries", "0")
        assert r.returncode == 1 and "Basic ***" in r.stderr, r.stderr
        assert "me:***@" not in r.stderr and "***@127.0.0.1" in r.stderr
        doctor = run_pipe("doctor", "--backend", url)
        dry = run_pipe("run", "summarize-text", str(notes), "--backend", url, "--dry-run")
        assert doctor.returncode == 0 and dry.returncode == 0, doctor.stdout + dry.stderr
        shown += [r.stdout, r.stderr, doctor.stdout, doctor.stderr, dry.stdout, dry.stderr]
    for command in (("runs", "--json"), ("runs",), ("show", str(notes / "note1.md"))):
        r = run_pipe(*command)
        assert r.returncode == 0, r.stderr
        shown += [r.stdout, r.stderr]
    shown.append(everything_stored(pipe_home / "pipe.db"))
    assert "Bearer ***" in shown[-1]  # the errors were recorded, redacted
    for text in shown:
        for secret in secrets:
            assert secret not in text, text


SPLIT = "日の出 être Straße 🙂"  # each of 日, ê and 🙂 is split across SmolLM2's tokens


def test_the_embedded_model_keeps_characters_split_across_tokens(tmp_path: Path) -> None:
    """The real embedded model (SmolLM2), held by a grammar to one string whose characters
    its tokenizer splits: the answer is that string, whole, ended by the grammar."""
    from tests import real_servers

    real_servers.need_embedded_model()
    r = run_pipe(
        "run",
        "summarize-text",
        "--json",
        "--set",
        f'ask.grammar=root ::= "{SPLIT}"',
        "--set",
        "ask.max_tokens=60",
        input=b"Say it.\n",
        env={"PIPE_EMBEDDED_MODEL": str(real_servers.smollm2_model())},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    [record] = records(r.stdout)
    assert record["answer"] == SPLIT
    assert record["completion_tokens"] <= 30  # the grammar ended it, not max_tokens


@pytest.mark.parametrize("failure", ["huge", "gzip-bomb"])
def test_a_reply_past_64_mb_fails_its_file_and_the_next_file_goes_on(
    failure: str, tmp_path: Path
) -> None:
    """A server that sends more than any answer needs (80 MB, or 100 MB gzipped into 100 KB
    though pipe asked for no encoding) costs the file it answered, never the run."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.md").write_text("The harbour was busy today.\n")
    (folder / "b.md").write_text("The ferry ran late.\n")
    tries = 1 if failure == "huge" else 4  # refused for good; "not JSON" is retried 3 times
    with FakeLlama(failures=[failure] * tries) as server:  # every try of the first file asked
        r = run_pipe("run", "summarize-text", str(folder), "--backend", server.url, "-j", "1")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "xxxxxxxx" not in r.stdout + r.stderr
    # Whichever file was asked first got the hostile replies; the other its answer.
    failed = [line for line in r.stderr.splitlines() if ".md: " in line]
    expected = "more than 64 MB" if failure == "huge" else "not JSON"
    assert len(failed) == 1 and expected in failed[0], r.stderr
    assert "Summary" in r.stdout and len(r.stdout) < 10_000  # the other file's answer alone
