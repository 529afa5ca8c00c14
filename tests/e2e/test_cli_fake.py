"""End to end: the real `pipe` CLI in a subprocess against fake servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, pipe_cmd, run_pipe, wait_for
from tests.fakes.llama import FakeKobold, FakeLlama, count_tokens, dead_url


def answers(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_summarize_folder_prints_answers_in_order(llama: FakeLlama, notes: Path) -> None:
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "-v")
    assert r.returncode == 0, r.stderr
    headers = [line for line in r.stdout.splitlines() if line.startswith("==> ")]
    assert headers == [f"==> {notes}/note{i}.md <==" for i in (1, 2, 3)]
    assert r.stdout.count("Summary ") == 3
    assert llama.generate_calls == 3
    assert "3 done" in r.stderr and "using llama.cpp" in r.stderr
    # The request is the raw-completion shape with the recipe's settings.
    path, body = next((p, b) for p, b in llama.requests if p == "/completion")
    assert body["n_predict"] == 160 and body["temperature"] == 0 and body["cache_prompt"] is True
    assert body["repeat_penalty"] == 1.1
    assert "<start_of_turn>user" in body["prompt"]  # gemma model name → Gemma chat format
    assert "<end_of_turn>" in body["stop"]


def test_rerun_skips_finished_files_without_model_calls(llama: FakeLlama, notes: Path) -> None:
    first = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--json")
    second = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--json", "-v")
    assert first.returncode == second.returncode == 0
    assert llama.generate_calls == 3
    assert [a["answer"] for a in answers(first.stdout)] == [
        a["answer"] for a in answers(second.stdout)
    ]
    assert {a["status"] for a in answers(second.stdout)} == {"skipped"}
    assert "0 done, 0 from cache, 3 skipped" in second.stderr


def test_changed_file_prompt_or_redo_is_done_again(llama: FakeLlama, notes: Path) -> None:
    run_pipe("run", "summarize-text", str(notes), "--backend", llama.url)
    (notes / "note2.md").write_text("Changed contents entirely.\n")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--json")
    assert llama.generate_calls == 4
    assert [a["status"] for a in answers(r.stdout)] == ["skipped", "done", "skipped"]
    # A changed prompt makes every file new again.
    run_pipe(
        "run",
        "summarize-text",
        str(notes),
        "--backend",
        llama.url,
        "--set",
        "ask.prompt=In one line: {text}",
    )
    assert llama.generate_calls == 7
    run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--redo")
    assert llama.generate_calls == 10


def test_touched_but_unchanged_file_comes_from_the_cache(llama: FakeLlama, notes: Path) -> None:
    run_pipe("run", "summarize-text", str(notes), "--backend", llama.url)
    os.utime(notes / "note1.md", (time.time() + 5, time.time() + 5))
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--json")
    assert llama.generate_calls == 3
    assert [a["status"] for a in answers(r.stdout)] == ["cached", "skipped", "skipped"]


def test_paths_on_stdin_newline_and_nul(llama: FakeLlama, notes: Path) -> None:
    listing = f"{notes}/note1.md\n{notes}/note3.md\n".encode()
    r = run_pipe("run", "summarize-text", "-", "--backend", llama.url, "--json", input=listing)
    assert [Path(a["path"]).name for a in answers(r.stdout)] == ["note1.md", "note3.md"]
    odd = notes / "odd\nname.md"
    odd.write_text("A file with a newline in its name.\n")
    r = run_pipe(
        "run",
        "summarize-text",
        "-",
        "-0",
        "--backend",
        llama.url,
        "--json",
        input=str(odd).encode() + b"\0",
    )
    assert r.returncode == 0, r.stderr
    assert answers(r.stdout)[0]["path"] == str(odd)


def test_text_on_stdin_is_one_item(llama: FakeLlama) -> None:
    r = run_pipe("run", "summarize-text", "--backend", llama.url, input=b"The report says hello.\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Summary ") and "==>" not in r.stdout
    again = run_pipe(
        "run", "summarize-text", "--backend", llama.url, input=b"The report says hello.\n"
    )
    assert again.stdout == r.stdout and llama.generate_calls == 1  # answered from the cache


def test_sidecar_written_beside_each_file_and_foreign_files_kept(
    llama: FakeLlama, notes: Path
) -> None:
    foreign = notes / "note3.md.summary.txt"
    foreign.write_text("my own notes, not pipe's\n")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    assert r.returncode == 1
    assert (notes / "note1.md.summary.txt").read_text().startswith("Summary ")
    assert foreign.read_text() == "my own notes, not pipe's\n"
    assert "not written by pipe" in r.stderr
    assert r.stdout == ""
    # pipe may replace its own sidecar when the file changes.
    (notes / "note1.md").write_text("Different text now.\n")
    run_pipe("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    assert (notes / "note1.md.summary.txt").read_text().startswith("Summary ")


def test_empty_and_binary_inputs(llama: FakeLlama, tmp_path: Path) -> None:
    """Each skipped with its reason (a missing path is a usage error: test_quiet_lazy.py)."""
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"  \n\n")
    (tmp_path / "data.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "good.txt").write_text("Fine text.\n")
    r = run_pipe(
        "run",
        "summarize-text",
        str(tmp_path),
        "--backend",
        llama.url,
        "--json",
    )
    statuses = {
        Path(a["path"]).name: (a["status"], a.get("note") or a.get("error"))
        for a in answers(r.stdout)
    }
    assert statuses["empty.txt"] == ("skipped", "empty file")
    assert statuses["data.txt"][0] == "skipped" and "binary" in statuses["data.txt"][1]
    assert statuses["blank.txt"][0] == "skipped"
    assert statuses["good.txt"][0] == "done"
    assert llama.generate_calls == 1  # nothing but the good file was sent
    assert r.returncode == 0


def test_huge_file_is_cut_to_fit_the_context(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    line = "The quick brown fox jumps over the lazy dog again and again. " * 16 + "\n"
    with big.open("w") as f:
        for _ in range(50 * 1024 * 1024 // len(line)):
            f.write(line)
    with FakeLlama(n_ctx=2048) as server:
        r = run_pipe("run", "summarize-text", str(big), "--backend", server.url, "--json")
        assert r.returncode == 0, r.stderr
        record = answers(r.stdout)[0]
        assert "cut to" in record["note"] and "fit the context" in record["note"]
        body = next(b for p, b in server.requests if p == "/completion")
        assert count_tokens(body["prompt"]) + body["n_predict"] <= 2048
        assert server.generate_calls == 1


def test_invalid_utf8_is_replaced_and_noted(llama: FakeLlama, tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1"))
    r = run_pipe("run", "summarize-text", str(tmp_path), "--backend", llama.url, "--json")
    record = answers(r.stdout)[0]
    assert record["status"] == "done" and "invalid UTF-8 replaced" in record["note"]
    body = next(b for p, b in llama.requests if p == "/completion")
    assert "caf\ufffd" in body["prompt"]


@pytest.mark.parametrize("failure", ["500", "garbage", "drop", "empty", "busy"])
def test_transient_failures_are_retried(failure: str, notes: Path) -> None:
    with FakeLlama(failures=[failure, failure]) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url, "-j", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Summary ") == 3
    assert server.generate_calls == 5


def test_persistent_failure_is_one_item_error_and_run_continues(notes: Path) -> None:
    with FakeLlama(failures=["500"] * 4) as server:
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", server.url, "-j", "1", "--json"
        )
    assert r.returncode == 1
    records = answers(r.stdout)
    # Whichever file reached the server first took all four 500s (while the first file
    # talks to the server, the next may be ready sooner); output stays in input order.
    assert [x["path"] for x in records] == sorted(x["path"] for x in records)
    [failed] = [x for x in records if x["status"] == "failed"]
    assert sorted(x["status"] for x in records) == ["done", "done", "failed"]
    assert "HTTP 500" in failed["error"] and "after 4 attempts" in failed["error"]
    name = Path(failed["path"]).name
    assert sum(1 for line in r.stderr.splitlines() if name in line) == 1
    # A re-run tries the failed file again and only that one.
    with FakeLlama() as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url)
    assert r.returncode == 0 and server.generate_calls == 1


def test_koboldcpp_native_api(notes: Path) -> None:
    with FakeKobold(failures=["busy"]) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url, "--json", "-v")
        assert r.returncode == 0, r.stderr
        assert "using koboldcpp" in r.stderr and "1 in flight" in r.stderr
        body = next(b for p, b in server.requests if p == "/api/v1/generate")
        assert body["trim_stop"] is True and body["genkey"].startswith("KCPP")
        assert body["max_context_length"] == 4096 and body["max_length"] == 160
        assert body["rep_pen"] == 1.1
        assert body["prompt"].startswith("<|im_start|>system\n")  # SmolLM2 → ChatML
        assert "<|im_end|>" in body["stop_sequence"]
        assert server.max_active == 1
        assert len(answers(r.stdout)) == 3


def test_llamafile_old_server_fields(notes: Path) -> None:
    with FakeLlama(llamafile="0.8.1", model="mistral-7b-instruct-v0.2.Q4_0.gguf") as server:
        r = run_pipe(
            "run", "summarize-text", str(notes / "note1.md"), "--backend", server.url, "-v"
        )
        body = next(b for p, b in server.requests if p == "/completion")
    assert r.returncode == 0 and r.stdout.startswith("Summary ")
    assert "model mistral-7b-instruct-v0.2.Q4_0.gguf" in r.stderr  # from the settings
    assert body["prompt"].startswith("[INST] ")  # its chat format follows from the name


def test_slots_are_kept_busy(notes: Path) -> None:
    for i in range(4, 13):
        (notes / f"note{i}.md").write_text(f"Note {i}\n")
    with FakeLlama(slots=4, latency=0.2) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url)
    assert r.returncode == 0
    assert server.max_active == 4  # default -j comes from /props total_slots


def test_a_server_saying_a_billion_slots_gets_the_bound_of_j(notes: Path) -> None:
    """/props is untrusted: total_slots 10**9 is not a billion worker threads."""
    with FakeLlama(slots=10**9) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url, "-v", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "1024 in flight" in r.stderr and "3 done" in r.stderr


def test_backend_down_is_exit_3_with_advice(notes: Path) -> None:
    r = run_pipe(
        "run",
        "summarize-text",
        str(notes),
        "--backend",
        dead_url(),
        "--wait",
        "0",
    )
    assert r.returncode == 3
    assert "nothing answers" in r.stderr and "--backend" in r.stderr
    assert "Traceback" not in r.stderr


def test_waits_for_a_loading_server(notes: Path) -> None:
    with FakeLlama(loading=1.5) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", server.url, "--wait", "20")
    assert r.returncode == 0, r.stderr


def test_waits_for_a_kobold_that_listens_late(notes: Path) -> None:
    server = FakeKobold().start(delay_listen=1.5)
    try:
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            f"http://127.0.0.1:{server._requested_port}",
            "--wait",
            "20",
        )
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr


def test_usage_errors_are_one_line(notes: Path) -> None:
    for args, expected in [
        (["run", "no-such-recipe", str(notes)], "no recipe named 'no-such-recipe'"),
        (["run", "summarize-text", str(notes), "--set", "ask.max_tokens=-3"], "ask.max_tokens"),
        (
            ["run", "summarize-text", str(notes), "--set", "ask.colour=red"],
            "ask.colour: unknown field",
        ),
        (["run", "summarize-text"], "stdin was empty"),
        (["run", "summarize-text", str(notes), "-j", "0"], "Invalid value"),
    ]:
        r = run_pipe(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert expected in r.stderr
        assert "Traceback" not in r.stderr


def test_bad_recipe_file_names_file_and_field(tmp_path: Path, notes: Path) -> None:
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[ask]\nprompt = "Summarize {txt}"\n')
    r = run_pipe("run", str(recipe), str(notes))
    assert r.returncode == 2
    assert f"{recipe}: ask.prompt: unknown field {{txt}}" in r.stderr


def test_user_recipe_listed_and_used(pipe_home: Path, llama: FakeLlama, notes: Path) -> None:
    (pipe_home / "recipes").mkdir(parents=True)
    (pipe_home / "recipes" / "shout.toml").write_text(
        'description = "Shout it"\ninputs = ["*.md"]\n'
        '[ask]\nprompt = "SHOUT: {text}"\nformat = "raw"\n'
    )
    r = run_pipe("recipes")
    assert "shout" in r.stdout and "user" in r.stdout and "summarize-text" in r.stdout
    r = run_pipe("run", "shout", str(notes), "--backend", llama.url)
    assert r.returncode == 0
    body = next(b for p, b in llama.requests if p == "/completion")
    assert body["prompt"].startswith("SHOUT: Note number")


def test_runs_and_show(llama: FakeLlama, notes: Path) -> None:
    run_pipe("run", "summarize-text", str(notes), "--backend", llama.url)
    r = run_pipe("runs")
    assert "summarize-text" in r.stdout and "3 done, 0 from cache, 0 skipped, 0 failed" in r.stdout
    assert "exit 0" in r.stdout
    r = run_pipe("show", str(notes / "note2.md"))
    assert r.returncode == 0
    assert "summarize-text  done" in r.stdout and "answer: Summary " in r.stdout


def test_two_runs_at_once_never_send_a_file_twice(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i:02}.txt").write_text(f"File {i}\n")
    with FakeLlama(slots=2, latency=0.05) as server:
        cmd = pipe_cmd("run", "summarize-text", str(folder), "--backend", server.url, "-q")
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert server.generate_calls == 40
    assert max(server.prompts.values()) == 1


def test_interrupt_saves_state_and_rerun_finishes(tmp_path: Path, pipe_home: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i:02}.txt").write_text(f"File {i}\n")
    with FakeLlama(slots=1, latency=0.2) as server:
        cmd = pipe_cmd("run", "summarize-text", str(folder), "--backend", server.url)
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: server.generate_calls >= 3, what="three answers before the interrupt")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert b"interrupted" in err
        first_calls = server.generate_calls
        assert 0 < first_calls < 20
        r = run_pipe("run", "summarize-text", str(folder), "--backend", server.url, "--json")
    assert r.returncode == 0
    records = answers(r.stdout)
    assert len(records) == 20 and all(x.get("answer") for x in records)
    db = sqlite3.connect(pipe_home / "pipe.db")
    done = db.execute(
        "SELECT path, COUNT(*) FROM history WHERE status = 'done' GROUP BY path"
    ).fetchall()
    assert len(done) == 20 and all(n == 1 for _, n in done)
    # Each file reached the model once, except at most the one in flight at the interrupt.
    assert server.generate_calls <= 21


def test_two_step_recipe_reuses_the_first_steps_answers(llama: FakeLlama, notes: Path) -> None:
    recipe = notes.parent / "two-step.toml"
    recipe.write_text(
        'inputs = ["*.md"]\n'
        '[[steps]]\nname = "gist"\nprompt = "Gist: {text}"\nformat = "raw"\n'
        '[[steps]]\nname = "title"\nprompt = "Title from {gist}"\nformat = "raw"\n'
    )
    r = run_pipe("run", str(recipe), str(notes), "--backend", llama.url, "--json")
    assert r.returncode == 0, r.stderr
    assert llama.generate_calls == 6
    prompts = [b["prompt"] for p, b in llama.requests if p == "/completion"]
    assert sum(p.startswith("Gist: Note number") for p in prompts) == 3
    assert sum(p.startswith("Title from Summary ") for p in prompts) == 3
    # Changing only the second step asks only the second step again.
    r = run_pipe(
        "run",
        str(recipe),
        str(notes),
        "--backend",
        llama.url,
        "--json",
        "--set",
        "steps.title.prompt=A better title from {gist}",
    )
    assert llama.generate_calls == 9
    assert all(a["status"] == "done" for a in answers(r.stdout))


def test_a_hung_request_times_out_and_is_retried(notes: Path) -> None:
    with FakeLlama(failures=["hang"]) as server:
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes / "note1.md"),
            "--backend",
            server.url,
            "--timeout",
            "1",
            "--json",
        )
    assert r.returncode == 0, r.stderr
    assert answers(r.stdout)[0]["status"] == "done"
    assert server.generate_calls == 2


def test_a_request_the_server_refuses_is_not_retried(llama: FakeLlama, notes: Path) -> None:
    """A 400 (here a grammar the server cannot parse) is the item's error at once: retrying
    cannot fix it, unlike a 500 or a dropped connection."""
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--set", "ask.grammar=oops"
    )
    assert r.returncode == 1
    assert r.stderr.count("failed to parse grammar") == 3
    assert [p for p, _ in llama.requests].count("/completion") == 3  # once per file


def test_cron_reruns_with_sidecars_converge(llama: FakeLlama, notes: Path) -> None:
    """pipe never takes a file it wrote as an input: three cron runs leave one summary per
    note, and the later runs write nothing and ask nothing."""
    args = ("run", "summarize-text", str(notes), "--backend", llama.url, "--write", "sidecar")
    for _ in range(3):
        r = run_pipe(*args, "-q")
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in notes.iterdir())
    assert names == sorted(
        [f"note{i}.md" for i in (1, 2, 3)] + [f"note{i}.md.summary.txt" for i in (1, 2, 3)]
    )
    assert llama.generate_calls == 3
    # Edited by hand, a summary is still pipe's output: not summarized, and not overwritten.
    edited = notes / "note1.md.summary.txt"
    edited.write_text("my own words\n")
    paths = "\n".join(str(p) for p in sorted(notes.iterdir())) + "\n"
    r = run_pipe("run", "summarize-text", "-", "--backend", llama.url, input=paths.encode())
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("==> ") == 3 and "summary.txt <==" not in r.stdout
    assert llama.generate_calls == 3 and edited.read_text() == "my own words\n"


def run_on_terminal(*args: str) -> tuple[int, bytes]:
    """The real CLI with stdout and stderr on a pseudo-terminal; all it wrote there."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        pipe_cmd(*args), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child has gone and closed its end
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return proc.wait(timeout=60), bytes(output)


HOSTILE_ANSWER = "A bay.\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07 Boats.\u202egpj.exe"


def test_control_characters_reach_a_terminal_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("one\n")
    (folder / "b\x1b[31mred.md").write_text("two\n")
    with FakeLlama(answer=lambda _: HOSTILE_ANSWER + "\nsecond line") as server:
        code, shown = run_on_terminal("run", "summarize-text", str(folder), "--backend", server.url)
        assert code == 0, shown
        assert b"\x1b" not in shown and b"\x07" not in shown and "\u202e".encode() not in shown
        assert b"A bay.\\e]0;owned\\x07\\e[2J" in shown and b"b\\e[31mred.md <==" in shown
        assert b"\nsecond line" in shown.replace(b"\r\n", b"\n")  # an answer keeps its lines
        # To a pipe, and in JSON, the bytes stay exactly as the model wrote them.
        r = run_pipe("run", "summarize-text", str(folder), "--backend", server.url)
        assert HOSTILE_ANSWER in r.stdout and "b\x1b[31mred.md <==" in r.stdout
        r = run_pipe("run", "summarize-text", str(folder), "--backend", server.url, "--json")
        assert {json.loads(line)["answer"] for line in r.stdout.splitlines()} == {
            HOSTILE_ANSWER + "\nsecond line"
        }


def test_default_ports_can_be_replaced_for_run_as_for_doctor(llama: FakeLlama, notes: Path) -> None:
    """PIPE_DEFAULT_BACKENDS replaces the ports tried when no --backend is given (pipe doctor
    reads the same list), so tests never meet the servers of the machine they run on."""
    dead = dead_url()
    r = run_pipe(
        "run",
        "summarize-text",
        str(notes),
        "-v",
        env={"PIPE_DEFAULT_BACKENDS": f"{dead} {llama.url}"},
    )
    assert r.returncode == 0, r.stderr
    assert f"using llama.cpp at {llama.url}" in r.stderr and llama.generate_calls == 3
