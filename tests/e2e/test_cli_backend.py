"""`--backend cli:PATH`: a llamafile run once per file (`--cli`), against a fake llamafile
(tests/fakes/llamafile_cli.py) and, marked `real`, llama.cpp's own one-shot program."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.backends import (
    ContextOverflow,
    LlamafileCli,
    NoVision,
    Rejected,
    Request,
    Transient,
    connect,
)
from tests import real_servers
from tests.conftest import ROOT, alive, pipe_cmd, run_pipe, wait_for, wait_gone

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "llamafile_cli.py"


@dataclass
class Fake:
    path: Path  # the executable wrapper, named like a llamafile
    record: Path  # one JSON per call: {"argv", "cwd"}, and a .pid file while it runs

    @property
    def backend(self) -> str:
        return f"cli:{self.path}"

    def calls(self) -> list[dict]:
        found = sorted(self.record.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        return [json.loads(p.read_text()) for p in found]

    def running(self, word: str = "") -> list[int]:
        """Pids of calls still running (whose prompt has `word`)."""
        pids = [int(p.stem) for p in self.record.glob("*.pid")]
        return [pid for pid in pids if word in prompt_of(self.call(pid))]

    def call(self, pid: int) -> dict:
        return json.loads((self.record / f"{pid}.json").read_text())


def make_fake(
    folder: Path, name: str = "mistral-7b-instruct.llamafile", shebang: bool = True
) -> Fake:
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "record"
    record.mkdir()
    path = folder / name
    head = "#!/bin/sh\n" if shebang else ""
    path.write_text(f'{head}exec "{sys.executable}" "{FAKE}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return Fake(path, record)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    made = make_fake(tmp_path / "models")
    monkeypatch.setenv("FAKE_CLI_RECORD", str(made.record))
    return made


def prompt_of(call: dict) -> str:
    argv = call["argv"]
    return argv[argv.index("-p") + 1] if "-p" in argv else ""


def answers(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- end to end, the real CLI --------------------------------------------------------------


def test_summarize_a_folder_one_process_per_file(fake: Fake, notes: Path) -> None:
    r = run_pipe("run", "summarize-text", str(notes), "--backend", fake.backend, "--json")
    assert r.returncode == 0, r.stderr
    records = answers(r.stdout)
    assert [Path(x["path"]).name for x in records] == ["note1.md", "note2.md", "note3.md"]
    assert all(x["answer"].startswith("ANSWER ") and "n=160" in x["answer"] for x in records)
    calls = fake.calls()
    assert len(calls) == 3  # one process per file: the first file is the probe
    for call in calls:
        argv = call["argv"]
        assert argv[0] == "--cli"
        assert {"--silent-prompt", "--log-disable"} <= set(argv)
        assert argv[argv.index("--temp") + 1] == "0"
        assert argv[argv.index("--repeat-penalty") + 1] == "1.1"
        prompt = prompt_of(call)
        assert prompt.startswith("[INST] You are a concise assistant.")  # mistral, by name
        assert "The harbour was busy today." in prompt and prompt.endswith(" [/INST]")
    # A re-run asks nothing: the answers are done and cached.
    again = run_pipe("run", "summarize-text", str(notes), "--backend", fake.backend, "--json")
    assert again.returncode == 0 and len(fake.calls()) == 3  # not even a probe


def test_five_files_take_five_processes_text_or_photos(fake: Fake, tmp_path: Path) -> None:
    """No probe process and no vision check process: the first file is the probe."""
    from PIL import Image

    texts, photos = tmp_path / "texts", tmp_path / "photos"
    texts.mkdir()
    photos.mkdir()
    for i in range(5):
        (texts / f"t{i}.md").write_text(f"Text number {i}.\n")
        Image.new("RGB", (64, 48), (40 * i, 90, 200)).save(photos / f"p{i}.jpg")
    r = run_pipe("run", "summarize-text", str(texts), "--backend", fake.backend, "-j", "3")
    assert r.returncode == 0, r.stderr
    assert len(fake.calls()) == 5
    r = run_pipe("run", "describe-images", str(photos), "--backend", fake.backend, "--json")
    assert r.returncode == 0, r.stderr
    assert all("image=" in x["answer"] and "image=0" not in x["answer"] for x in answers(r.stdout))
    assert len(fake.calls()) == 10


def test_a_blind_model_stops_a_photo_run_at_the_first_photo(fake: Fake, tmp_path: Path) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (64, 48), (40 * i, 90, 200)).save(tmp_path / f"p{i}.jpg")
    r = run_pipe(
        "run", "describe-images", str(tmp_path), "--backend", fake.backend,
        env={"FAKE_CLI_NO_IMAGE": "1"},
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert "cannot see images" in r.stderr and "--mmproj" in r.stderr
    assert len(fake.calls()) == 3  # the first photo, a tiny text, a tiny photo


def test_hostile_text_reaches_the_model_as_one_argument_and_logs_land_nowhere(
    fake: Fake, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    hostile = "-n 5 --evil \"quoted\" 'single' $(touch PWNED) `touch PWNED2`; rm -rf x\nline two\n"
    (notes / "evil.txt").write_text(hostile)
    recipe = tmp_path / "echo.toml"
    recipe.write_text(
        'inputs = ["*.txt"]\n[ask]\nkind = "text"\nprompt = "{text}"\nformat = "raw"\n'
        'max_tokens = 20\n[then]\naction = "print"\n'
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "FAKE_CLI_STRAY_LOG": "1"}
    cmd = pipe_cmd("run", str(recipe), str(notes), "--backend", fake.backend, "--json")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    item = fake.calls()[-1]
    argv = item["argv"]
    prompt = prompt_of(item)
    assert prompt.startswith("-n 5 --evil") and prompt.rstrip("\n") == hostile.rstrip("\n")
    assert "--evil" not in argv and argv.count("-n") == 1  # the text is one element
    assert not list(tmp_path.rglob("PWNED*"))
    # Stray logs went to each call's own temporary folder, which is gone.
    assert not (cwd / "llava.log").exists() and not (notes / "llava.log").exists()
    assert not list(tmp_path.rglob("*.log")) and not list(tmp_path.rglob("main.log"))
    assert all(not Path(call["cwd"]).exists() for call in fake.calls())
    assert len({call["cwd"] for call in fake.calls()}) == len(fake.calls())


def test_a_failing_file_is_one_error_line_with_stderrs_last_line(fake: Fake, notes: Path) -> None:
    (notes / "note2.md").write_text("This one says BADFILE.\n")
    (notes / "note3.md").write_text("This one gets EMPTY output.\n")
    env = {"FAKE_CLI_FAIL_ON": "BADFILE", "FAKE_CLI_EMPTY_ON": "EMPTY"}
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", fake.backend, "--json",
        "--retries", "1", env=env,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    records = answers(r.stdout)
    assert [Path(x["path"]).name for x in records if x.get("answer")] == ["note1.md"]
    errors = [line for line in r.stderr.splitlines() if "note2.md" in line]
    assert len(errors) == 1
    assert "failed (exit 1): fake: GGML_ASSERT failed for this prompt" in errors[0]
    empty = [line for line in r.stderr.splitlines() if "note3.md" in line]
    assert len(empty) == 1 and "empty answer" in empty[0]
    # A failed exit is not retried (the same input fails the same way); empty output is.
    prompts = [prompt_of(c) for c in fake.calls()]
    assert sum("BADFILE" in p for p in prompts) == 1
    assert sum("EMPTY" in p for p in prompts) == 2


def test_a_model_that_cannot_load_stops_the_run_at_the_first_file(fake: Fake, notes: Path) -> None:
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", fake.backend,
        env={"FAKE_CLI_LOAD_FAIL": "1"},
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert "failed to load model 'fake.gguf'" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert len(fake.calls()) == 2  # the first file, then a tiny request: not the file's fault


def test_a_missing_or_unexecutable_file_is_a_clear_error(tmp_path: Path, notes: Path) -> None:
    missing = run_pipe("run", "summarize-text", str(notes), "--backend", "cli:~/no/such.llamafile")
    assert missing.returncode == 3 and "no such file" in missing.stderr
    plain = tmp_path / "model.llamafile"
    plain.write_text("not yet executable")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", f"cli:{plain}")
    assert r.returncode == 3 and f"chmod +x {plain}" in r.stderr


def test_a_hung_process_is_killed_at_the_timeout(fake: Fake, notes: Path) -> None:
    (notes / "note2.md").write_text("This one makes it HANG.\n")
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", fake.backend,
        "--timeout", "1", "--retries", "0", env={"FAKE_CLI_HANG_ON": "HANG"},
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "no answer in 1 s" in r.stderr and "note2.md" in r.stderr
    # The hung child sleeps forever: pipe returned because it killed it, and went on.
    assert "note1.md" in r.stdout and "note3.md" in r.stdout and "note2.md" not in r.stdout
    hung = fake.running()  # its pid file stayed: it never finished by itself
    assert len(hung) == 1 and not alive(hung[0])


def test_ctrl_c_kills_the_running_child_and_leaves_the_file_for_the_next_run(
    fake: Fake, notes: Path, pipe_home: Path
) -> None:
    (notes / "note1.md").write_text("This one makes it HANG.\n")
    cmd = pipe_cmd(
        "run", "summarize-text", str(notes), "--backend", fake.backend, "--retries", "0"
    )  # fmt: skip
    env = {**os.environ, "FAKE_CLI_HANG_ON": "HANG"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: fake.running("HANG"), what="the hanging child to start")
        child = fake.running("HANG")[0]
        assert alive(child)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    wait_for(lambda: not alive(child), timeout=30, what="the child to be gone")
    assert b"note1.md" not in err  # not the file's failure: the next run does it
    failed = sqlite3.connect(pipe_home / "pipe.db").execute(
        "SELECT COUNT(*) FROM history WHERE status = 'failed'"
    )
    assert failed.fetchone() == (0,)


@pytest.mark.parametrize("shebang", [True, False])
def test_sigkill_to_pipe_stops_the_running_child_and_the_next_run_cleans_its_folder(
    shebang: bool, tmp_path: Path, notes: Path
) -> None:
    """A program started directly or through `sh` (an APE file; this sh waits for it, no
    exec) dies with pipe; its temporary folder is removed by the next run."""
    made = make_fake(tmp_path / "models", shebang=shebang)
    made.path.write_text(made.path.read_text().replace("exec ", ""))
    (notes / "note1.md").write_text("This one makes it HANG.\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"FAKE_CLI_RECORD": str(made.record), "FAKE_CLI_HANG_ON": "HANG", "TMPDIR": str(temp)}
    cmd = pipe_cmd("run", "summarize-text", str(notes), "--backend", made.backend)
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: made.running("HANG"), what="the hanging child to start")
        child = made.running("HANG")[0]
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    wait_gone(child, "child")
    assert [p.name for p in temp.iterdir()][0].startswith(f"pipe-cli-{proc.pid}-")
    (notes / "note1.md").write_text("Now it answers.\n")
    r = run_pipe("run", "summarize-text", str(notes), "--backend", made.backend, env=env)
    assert r.returncode == 0, r.stderr
    assert list(temp.iterdir()) == []


# -- the backend on its own ----------------------------------------------------------------


def test_probe_reports_what_the_file_is(fake: Fake) -> None:
    backend = connect(fake.backend, timeout=30)
    assert isinstance(backend, LlamafileCli)
    info = backend.info
    assert info is not None
    assert (info.kind, info.url, info.model) == (
        "llamafile --cli",
        f"cli:{fake.path}",
        "mistral-7b-instruct",
    )
    assert info.slots == 1 and info.n_ctx is None and info.chat_format == "mistral"
    assert {"text", "grammar"} <= info.abilities
    assert backend.count_tokens("anything") is None
    backend.close()


def test_stop_strings_cut_the_answer(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = connect(fake.backend, timeout=30)
    monkeypatch.setenv("FAKE_CLI_SUFFIX", " and more</s>[INST] junk")
    done = backend.complete(Request(prompt="hello", stop=("and more",)))
    assert done.text.startswith("ANSWER ") and done.text.endswith(" grammar=0 ")
    assert done.stop_reason == "word"
    monkeypatch.setenv("FAKE_CLI_SUFFIX", "</s>junk")  # the chat format's own stop string
    assert backend.complete(Request(prompt="hello")).text.endswith("grammar=0")


def test_grammar_image_and_no_vision(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = connect(fake.backend, timeout=30)
    jpeg = b"\xff\xd8fake jpeg\xff\xd9"
    done = backend.complete(Request(prompt="Name it.", grammar="root ::= [a-z]+", images=(jpeg,)))
    assert f"image={len(jpeg)}" in done.text and "grammar=1" in done.text
    argv = fake.calls()[-1]["argv"]
    assert argv[argv.index("--grammar") + 1] == "root ::= [a-z]+"
    assert prompt_of(fake.calls()[-1]).startswith("[INST] <image>\nName it.")
    monkeypatch.setenv("FAKE_CLI_NO_IMAGE", "1")
    blind = connect(fake.backend, timeout=30)
    blind.check_vision()  # nothing to run: its first photo is the check
    before = len(fake.calls())
    with pytest.raises(NoVision, match="needs a vision model"):
        blind.complete(Request(prompt="Name it.", images=(jpeg,)))
    assert len(fake.calls()) == before + 3  # the photo; a tiny text; a tiny photo


def test_too_long_a_prompt_is_a_context_overflow(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = connect(fake.backend, timeout=30)
    monkeypatch.setenv("FAKE_CLI_MAX_PROMPT", "100")
    with pytest.raises(ContextOverflow) as caught:
        backend.complete(Request(prompt="x" * 200, format="raw"))
    assert (caught.value.prompt_tokens, caught.value.n_ctx) == (200, 100)


def test_a_very_long_prompt_goes_through_a_file(fake: Fake) -> None:
    backend = connect(fake.backend, timeout=30)
    text = "word " * 40_000  # 200 kB: over Linux's 128 KiB limit for one argument
    done = backend.complete(Request(prompt=text, format="raw"))
    assert done.text.startswith("ANSWER ")
    assert "-f" in fake.calls()[-1]["argv"] and "-p" not in fake.calls()[-1]["argv"]


def test_an_ape_binary_that_linux_refuses_runs_through_sh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ape = make_fake(tmp_path / "ape", shebang=False)  # execve: ENOEXEC, as an APE without binfmt
    monkeypatch.setenv("FAKE_CLI_RECORD", str(ape.record))
    backend = connect(ape.backend, timeout=30)
    assert backend.complete(Request(prompt="hi")).text.startswith("ANSWER ")
    assert backend._launcher == ["sh"]


def test_timeout_and_crash_are_transient(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LlamafileCli(fake.path, timeout=1)
    backend.probe()
    monkeypatch.setenv("FAKE_CLI_HANG_ON", "HANG")
    with pytest.raises(Transient, match="no answer in 1 s"):
        backend.complete(Request(prompt="HANG"))
    monkeypatch.setenv("FAKE_CLI_FAIL_ON", "BAD")
    with pytest.raises(Rejected, match="GGML_ASSERT"):
        backend.complete(Request(prompt="BAD"))


# -- real: llama.cpp's one-shot program behind llamafile's flags ---------------------------

WRAPPER = """#!{python}
# llamafile's --cli flags -> the current llama.cpp build's one-shot programs. Like llamafile,
# it hands an --image request to the vision program (llava-cli there, llama-mtmd-cli here).
import os, sys
argv = sys.argv[1:]
vision = "--image" in argv
if vision:
    args = ["{mtmd}", "-m", "{model}", *({mmproj!r} and ["--mmproj", {mmproj!r}])]
    # llava-cli takes the prompt as it is, split at "<image>"; llama-mtmd-cli wraps it in a
    # chat template, so give it one that passes the text through, and its own marker.
    passthrough = "{{% for m in messages %}}{{{{ m.content }}}}{{% endfor %}}"
    args += ["--jinja", "--chat-template", passthrough]
else:
    args = ["{completion}", "-m", "{model}", "-no-cnv"]
for i, arg in enumerate(argv):
    if arg == "--cli":
        continue
    if arg == "--silent-prompt":
        if vision:
            continue  # llama-mtmd-cli never echoes the prompt
        arg = "--no-display-prompt"
    if arg == "--log-disable":
        continue  # llama-completion's --log-disable silences the answer too
    if vision and i > 0 and argv[i - 1] == "-p":
        arg = arg.replace("<image>", "<__media__>")
    args.append(arg)
os.execv(args[0], args)
"""


def llama_program(name: str) -> Path:
    """One of the current llama.cpp build's programs, beside its llama-server."""
    server = os.environ.get("PIPE_TEST_LLAMA_SERVER")
    folder = Path(server).parent if server else real_servers.CACHE / "llama" / "bin"
    path = folder / name
    if not path.is_file():
        real_servers.unavailable(f"no {name} at {path}: .ci/run builds it beside llama-server")
    return path


def real_llamafile(
    folder: Path, name: str, *, vision: bool = False, mmproj: Path | None = None
) -> Path:
    """A `.llamafile` stand-in that runs gemma-3-270m through the real one-shot programs;
    with `vision`, `--image` requests reach llama-mtmd-cli (with `mmproj`, if given)."""
    wrapper = folder / name
    wrapper.write_text(
        WRAPPER.format(
            python=sys.executable,
            completion=llama_program("llama-completion"),
            mtmd=llama_program("llama-mtmd-cli") if vision else "(no vision program)",
            model=real_servers.gemma_model(),
            mmproj=str(mmproj or ""),
        )
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.real
def test_real_llama_completion_summarizes_two_notes(tmp_path: Path) -> None:
    wrapper = real_llamafile(tmp_path, "gemma-3-270m.llamafile")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("The harbour was busy today: three ships came in with grain.\n")
    (notes / "b.txt").write_text("Our cat sleeps all day and hunts moths at night.\n")
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", f"cli:{wrapper}", "--json",
        "--set", "ask.max_tokens=24", timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    records = answers(r.stdout)
    assert len(records) == 2 and all(x["answer"].strip() for x in records), records
    assert not list(notes.glob("*.log"))


PHOTOS = ROOT / "samples" / "photos"


@pytest.mark.real
def test_real_llama_mtmd_cli_describes_and_renames_photos(tmp_path: Path) -> None:
    """`--cli --image`: per photo, a real model load and a real image encode through a
    projector (random weights: the captions are nonsense by design). A broken photo is that
    photo's error; the rename plan goes through the recipe's grammar."""
    projector = real_servers.projector("tiny-mmproj-gemma3-270m.gguf")
    wrapper = real_llamafile(tmp_path, "llava-gemma.llamafile", vision=True, mmproj=projector)
    album = tmp_path / "album"
    album.mkdir()
    for name in ("DSCN0010.jpg", "Kodak_CX7530.jpg"):
        shutil.copy2(PHOTOS / name, album / name)
    (album / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    before = sorted(p.name for p in album.iterdir())
    backend = ("--backend", f"cli:{wrapper}", "--set", "ask.max_tokens=8")
    r = run_pipe("run", "describe-images", str(album), *backend, "--json", timeout=600)
    assert r.returncode == 1, r.stderr  # one file failed, the others were described
    records = {Path(x["path"]).name: x for x in answers(r.stdout)}
    assert records["broken.jpg"]["status"] == "failed" and "Traceback" not in r.stderr
    described = [records[n] for n in ("DSCN0010.jpg", "Kodak_CX7530.jpg")]
    assert all(x["status"] == "done" and x["answer"].strip() for x in described), described
    r = run_pipe("run", "rename-images", str(album), *backend, "--dry-run", timeout=600)
    assert r.stdout.count(" -> ") == 2, r.stdout + r.stderr
    assert sorted(p.name for p in album.iterdir()) == before  # a dry run, and no stray logs
    assert not list(ROOT.glob("*.log"))


@pytest.mark.real
def test_real_llamafile_without_a_projector_is_refused_before_the_first_photo(
    tmp_path: Path,
) -> None:
    wrapper = real_llamafile(tmp_path, "gemma.llamafile", vision=True)  # no --mmproj
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy2(PHOTOS / "DSCN0010.jpg", album / "DSCN0010.jpg")
    r = run_pipe("run", "describe-images", str(album), "--backend", f"cli:{wrapper}", timeout=300)
    assert r.returncode == 3, r.stderr
    assert "cannot see images" in r.stderr and "--mmproj" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_a_text_too_long_for_the_context_is_cut_and_answered(fake: Fake, notes: Path) -> None:
    (notes / "note2.md").write_text("The harbour was busy. " * 100)
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", fake.backend, "--json",
        env={"FAKE_CLI_MAX_PROMPT": "1000"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cut = [x for x in answers(r.stdout) if x["path"].endswith("note2.md")][0]
    assert cut["answer"].startswith("ANSWER ") and "to fit the context" in cut["note"]


def test_a_call_that_fails_because_the_run_stops_is_not_the_items_failure() -> None:
    """Ctrl-C kills the running child; with --retries 0 that must not be recorded as the
    file's error (the next run does the file)."""
    from pipeline.engine.retry import Interrupted, RetryPolicy

    policy = RetryPolicy(retries=0)

    def killed_by_the_stop() -> None:
        policy.stop.set()
        raise Transient("killed by SIGKILL")

    with pytest.raises(Interrupted):
        policy.call(killed_by_the_stop)
    with pytest.raises(Transient):
        RetryPolicy(retries=0).call(lambda: (_ for _ in ()).throw(Transient("crash")))
