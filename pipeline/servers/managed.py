"""A model server that pipe starts for the user and stops at the end: a `.llamafile` run with
`--server --nobrowser`, or a `llama-server` binary with `-m model.gguf` (and `--mmproj`).

    spec = ManagedSpec(Path("llava-v1.5-7b-q4.llamafile"))
    with open_managed(spec, say=print) as url:
        ...  # a llama.cpp-style server answers at url

It listens on a free loopback port, runs in a temporary folder (the old llamafile server
writes `llama.log` into its working folder) with its output logged there, and counts as
started once `/health` answers: a refused connection and 503 "Loading model" both mean "not
yet". It is stopped when the block ends, on Ctrl-C and on errors (SIGTERM to its process
group, then SIGKILL), and by pipe's watchdog (orphans.py) if pipe itself is killed, even
by SIGKILL, however it was started (through `sh` too). The folder is named with pipe's pid:
a later start removes the folders of pipes that were killed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from pipeline.errors import BackendUnavailable, UsageError
from pipeline.servers import orphans

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)

STOP_SECONDS = 5.0  # between SIGTERM and SIGKILL
POLL_SECONDS = 0.1
LOG_NAME = "server.log"

# llamafile's README, "Gotchas": register the APE loader with binfmt_misc.
APE_FIX = (
    "install the APE loader: sudo wget -O /usr/bin/ape"
    " https://cosmo.zip/pub/cosmos/bin/ape-$(uname -m).elf && sudo chmod +x /usr/bin/ape"
    " && sudo sh -c \"echo ':APE:M::MZqFpD::/usr/bin/ape:' >/proc/sys/fs/binfmt_misc/register\""
    " (or, if WINE or WSL claims it: sudo sh -c 'echo -1 > /proc/sys/fs/binfmt_misc/status');"
    " see llamafile's README, Gotchas"
)


@dataclass(frozen=True)
class ManagedSpec:
    """What to start. With no `server_binary` the model is itself the program (a llamafile);
    with one, the binary is run with `-m model` (a llama.cpp `llama-server`)."""

    model: Path
    server_binary: str | None = None
    mmproj: Path | None = None
    extra_args: tuple[str, ...] = ()
    start_timeout: float = 300.0

    @classmethod
    def for_model(
        cls,
        model: str | Path,
        *,
        server_binary: str | None = None,
        mmproj: str | Path | None = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 300.0,
    ) -> ManagedSpec:
        """The spec a user means by `--model FILE`: a `.gguf` is served by `server_binary`
        (default `llama-server` on PATH), anything else is run as a llamafile."""
        path = Path(model).expanduser()
        if server_binary is None and path.suffix.lower() == ".gguf":
            server_binary = "llama-server"
        return cls(
            path,
            server_binary,
            Path(mmproj).expanduser() if mmproj else None,
            tuple(extra_args),
            start_timeout,
        )

    @property
    def name(self) -> str:
        return self.model.name


class ManagedServer:
    """`with ManagedServer(spec) as server:` a ready server at `server.url`, stopped after."""

    def __init__(self, spec: ManagedSpec, say: Callable[[str], None] = lambda _: None) -> None:
        self.spec = spec
        self.say = say
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""
        self.folder: Path | None = None
        self.via_sh = False
        self._previous_sigterm: Any = None
        self._sigterm_taken = False
        # stop() was called: a start under way in another thread (a worker's, for an item
        # that needed the model) gives up, and the run that is ending stops what it started.
        self._stopping = threading.Event()

    # -- start ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raise the UsageError that start() would for these files, starting nothing."""
        self._command()

    def start(self) -> str:
        """Start it and wait until it is ready (from any thread; once per ManagedServer)."""
        command = self._command()
        self.port = _free_port()
        command += ["--host", "127.0.0.1", "--port", str(self.port), *self.spec.extra_args]
        self.folder = Path(tempfile.mkdtemp(prefix=orphans.owned_prefix("pipe-server-")))
        self.say(f"starting {self.spec.name} as a server on port {self.port}…")
        # Until it is stopped, SIGTERM to pipe unwinds like Ctrl-C (a runner that catches
        # signals itself puts this back when it is done), so the server is stopped too.
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
            self._sigterm_taken = True
        try:
            self._spawn(command)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    def _command(self) -> list[str]:
        spec = self.spec
        if not spec.model.is_file():
            raise UsageError(f"--model {spec.model}: no such file")
        if spec.mmproj is not None and not spec.mmproj.is_file():
            raise UsageError(f"--mmproj {spec.mmproj}: no such file")
        projector = ["--mmproj", str(spec.mmproj.resolve())] if spec.mmproj else []
        if spec.server_binary is None:
            if not os.access(spec.model, os.X_OK):
                raise UsageError(
                    f"--model {spec.model} is not executable: chmod +x {spec.model}"
                    " (a .gguf needs --server-binary, e.g. llama-server)"
                )
            return [str(spec.model.resolve()), "--server", "--nobrowser", *projector]
        binary = shutil.which(spec.server_binary)
        if binary is None:
            raise UsageError(
                f"{spec.server_binary} not found or not executable; pass --server-binary PATH"
                " (a llama.cpp llama-server) or use a .llamafile"
            )
        return [os.path.abspath(binary), "-m", str(spec.model.resolve()), *projector]

    def _spawn(self, command: list[str]) -> None:
        assert self.folder is not None
        self._give_up_if_stopping()
        orphans.arm()
        with (self.folder / LOG_NAME).open("ab") as log:
            try:
                self.proc = _popen(command, log, self.folder)
            except OSError as e:
                if e.errno != errno.ENOEXEC:
                    raise BackendUnavailable(f"could not start {command[0]}: {e}") from None
                # An APE llamafile that binfmt_misc hands to nobody (or to WINE): the file
                # is also a valid shell script, which starts it on any POSIX system.
                self.via_sh = True
                try:
                    self.proc = _popen(["sh", *command], log, self.folder)
                except OSError as e2:
                    raise BackendUnavailable(
                        f"could not start {command[0]} (exec format error, and sh: {e2}); "
                        + APE_FIX
                    ) from None
        orphans.guard(self.proc.pid)  # its group: sh and the llamafile it runs, if any

    def _wait_until_ready(self) -> None:
        import httpx

        proc = self.proc
        assert proc is not None
        deadline = time.monotonic() + self.spec.start_timeout
        health = f"http://127.0.0.1:{self.port}/health"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                self._give_up_if_stopping()
                code = proc.poll()
                if code is not None:
                    raise BackendUnavailable(self._exited_message(code))
                if _answers(client, health):
                    return
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"{self.spec.name} was not ready after {self.spec.start_timeout:.0f} s"
                        f" (see --start-timeout); its log ends: {self.log_tail()}"
                    )
                time.sleep(POLL_SECONDS)

    def _give_up_if_stopping(self) -> None:
        if self._stopping.is_set():
            raise BackendUnavailable(f"{self.spec.name}: pipe is stopping")

    def _exited_message(self, code: int) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        message = f"{self.spec.name} {how} before it was ready; its log ends: {self.log_tail()}"
        log = self.log_tail().lower()
        if self.via_sh or "wine" in log or "run-detectors" in log:
            message += f"; if this is an APE llamafile, {APE_FIX}"
        return message

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the server's log, on one line."""
        if self.folder is None:
            return "(no log)"
        # Its output, else a log it wrote in its folder (llamafile's llama.log).
        logs = [self.folder / LOG_NAME, *sorted(self.folder.glob("*.log"))]
        for path in logs:
            kept = [line.strip() for line in _end_of(path).splitlines() if line.strip()]
            if kept:
                tail = " | ".join(kept[-lines:])
                return tail if len(tail) <= 400 else "…" + tail[-400:]
        return "(empty)"

    # -- stop -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the server and everything it started; remove its folder. Safe to repeat,
        and from another thread than the one starting it."""
        self._stopping.set()
        if self._sigterm_taken:  # a SIGTERM from now on ends pipe; the watchdog, the server
            signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)
            self._sigterm_taken = False
        proc, self.proc = self.proc, None
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # anything the server left in its group
            orphans.release(proc.pid)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def open_managed(spec: ManagedSpec, say: Callable[[str], None]) -> Iterator[str]:
    """The URL of a server started from `spec` for the block; stopped after."""
    with ManagedServer(spec, say) as server:
        yield server.url


def _popen(command: list[str], log: Any, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,  # its own group: Ctrl-C reaches pipe, which stops it
    )


def _end_of(path: Path, size: int = 8192) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _answers(client: httpx.Client, url: str) -> bool:
    """Ready: `/health` says 200 (or 404, a server without it). Refused, timed out, 503
    "Loading model" or any other error: not yet."""
    import httpx

    try:
        status = client.get(url).status_code
    except httpx.HTTPError:
        return False
    return status in (200, 404)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
