"""llamafile as a one-shot program: `--backend cli:~/models/mistral.llamafile`.

Not HTTP: every `complete()` runs the executable once (`--cli -p PROMPT -n N --temp T
--silent-prompt --log-disable`), and its stdout is the answer. Each run loads the whole model
again, so this is the slow path (backends.md); it exists for people who have only the file.

Model output and file text are untrusted: the prompt is one argv element, never a shell
word. Each process runs in a fresh temporary folder (stray `main.log` / `llava.log` land
there and vanish), in its own process group, with the backend's timeout; a timeout,
`abort_running()` (Ctrl-C) or `close()` kills the group, and pipe's watchdog (orphans.py)
does if pipe is killed. A later run removes the folders of a killed one.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.backends.base import (
    Backend,
    Completion,
    ContextOverflow,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    Transient,
    Unreachable,
    Unsuitable,
    tiny_jpeg,
)
from pipeline.backends.chat_formats import guess_format
from pipeline.servers import orphans

PREFIX = "cli:"
KIND = "llamafile --cli"
# Linux caps one argv element at 128 KiB (MAX_ARG_STRLEN): longer prompts go through `-f`.
MAX_ARG_BYTES = 120_000
# llama.cpp's one-shot program: "prompt is too long (376 tokens, max 252)", max = n_ctx - 4.
_TOO_LONG = re.compile(r"prompt is too long \((\d+) tokens, max (\d+)\)")
_LOG_PREFIX = re.compile(r"^\d+\.\d+\.\d+\.\d+ [A-Z] ")  # llama.cpp's "0.00.004.305 E "
IMAGE_MARKER = "<image>"  # where llava-cli puts the image in a prompt that names it
NO_VISION_HINT = "use a LLaVA llamafile (it carries its projector), or give the model --mmproj"


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        """stderr's last non-empty line without llama.cpp's timestamp: the reason."""
        for line in reversed(self.stderr.splitlines()):
            line = _LOG_PREFIX.sub("", line.strip())
            if line:
                return line[:300]
        return "(nothing on stderr)"


class LlamafileCli(Backend):
    """One process per request; `ServerInfo.slots` is 1 (each process holds the whole
    model in memory), `-j` raises it."""

    kind = KIND
    title = "llamafile --cli"
    prefix = PREFIX  # never detected: a file, not a server
    prefix_help = "cli:FILE.llamafile (run once per file, no server)"

    @classmethod
    def open(
        cls,
        target: str,
        *,
        wait: float = 0.0,
        timeout: float = 300.0,
        api_key: str | None = None,
        model_name: str | None = None,
    ) -> Backend:
        program = cls(target, timeout=timeout)
        program.probe()
        return program

    def __init__(self, path: str | Path, timeout: float = 300.0) -> None:
        self.path = Path(path).expanduser()
        self.url = f"{PREFIX}{self.path}"
        self.timeout = timeout
        self._launcher: list[str] | None = None  # [] or ["sh"] once a start succeeded
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._closed = False
        self._stopping = False  # Ctrl-C or close: a failure now is ours, not the model's
        self._first = threading.Lock()
        self._proven: set[str] = set()  # "text", "image": a request of that kind succeeded
        self._unsuitable: Unsuitable | None = None

    # -- the Backend interface ------------------------------------------------------------
    def probe(self) -> ServerInfo:
        """Check the file; no process is run. The first real request is the probe: until
        one succeeds, requests go one at a time, and a model that cannot load stops the run
        there (Unsuitable: exit 3)."""
        if not self.path.exists():
            raise Rejected(f"{self.url}: no such file")
        if not self.path.is_file():
            raise Rejected(f"{self.url}: not a file")
        if not os.access(self.path, os.X_OK):
            raise Rejected(f"{self.url}: not executable; run: chmod +x {self.path}")
        name = self.path.name.lower()
        self.info = ServerInfo(
            kind=KIND,
            url=self.url,
            model=self.path.stem,
            slots=1,
            n_ctx=None,  # unknown until the program says "prompt is too long"
            chat_format=guess_format(name),
            abilities=frozenset({"text", "grammar", "vision"}),  # vision: the first photo says
            vision_api="cli",
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        kind = "image" if request.images else "text"
        if kind not in self._proven:
            with self._first:  # the others wait for the first request's verdict
                if self._unsuitable is not None:
                    raise self._unsuitable
                if kind not in self._proven:
                    return self._first_request(request, kind)
        return self._complete(request)

    def _first_request(self, request: Request, kind: str) -> Completion:
        """The first text (or photo) request, alone, is the probe: if it fails, a tiny
        request says whether the file is at fault or the model (it does not load, or cannot
        take `--image`: Unsuitable, no file can succeed)."""
        try:
            completion = self._complete(request)
        except ContextOverflow:
            self._proven.add("text")  # it loaded and counted the prompt
            raise
        except (Rejected, Transient):
            if not self._stopping:
                self._diagnose(kind)
            raise  # the model works: this file's own failure
        self._proven.update({"text", kind})
        return completion

    def _diagnose(self, kind: str) -> None:
        for needed in ("text", kind):
            if needed in self._proven:
                continue
            image = needed == "image"
            tiny = Request(
                prompt="Describe the photo." if image else "Hi",
                max_tokens=1,
                images=(tiny_jpeg(),) if image else (),
            )
            try:
                self._complete(tiny)
            except (Rejected, Transient) as e:
                if self._stopping:
                    return
                if image:
                    self._unsuitable = NoVision(
                        f"{self.url} cannot see images ({e}); {NO_VISION_HINT}"
                    )
                else:
                    self._unsuitable = Unsuitable(
                        f"{e} (a tiny test request failed too: no file can succeed)"
                    )
                raise self._unsuitable from None
            self._proven.add(needed)

    def _complete(self, request: Request) -> Completion:
        prompt, stop = self.raw_prompt(_with_image_marker(request))
        with tempfile.TemporaryDirectory(prefix=orphans.owned_prefix("pipe-cli-")) as folder:
            args = _args(prompt, request=request, folder=Path(folder))
            outcome = self._run(args, timeout=self.timeout, cwd=folder)
        self._raise_for_outcome(outcome)
        text = outcome.stdout.removesuffix("\n")
        stop_reason = None
        cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
        if cut >= 0:  # --cli does not stop on stop strings: cut at the first one
            text, stop_reason = text[:cut], "word"
        return Completion(text=text, stop_reason=stop_reason)

    def count_tokens(self, text: str) -> int | None:
        return None  # no tokenizer without loading the model: pipe estimates

    def check_vision(self) -> None:
        """Nothing to run: the first photo is the check (complete raises NoVision), so
        describing 5 photos runs 5 processes, not 7."""

    def abort_running(self) -> None:
        """Ctrl-C: kill every running child (and its process group)."""
        self._stopping = True
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.abort_running()

    # -- helpers --------------------------------------------------------------------------
    def _run(self, args: list[str], *, timeout: float, cwd: str | None = None) -> Outcome:
        """Run the program once, in `cwd` (a fresh temporary folder when None)."""
        if cwd is None:
            with tempfile.TemporaryDirectory(prefix=orphans.owned_prefix("pipe-cli-")) as folder:
                return self._run(args, timeout=timeout, cwd=folder)
        proc = self._start(args, cwd)
        try:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                raise Transient(
                    f"{self.url} gave no answer in {timeout:g} s (see --timeout); killed it"
                ) from None
        except BaseException:
            _kill_group(proc)  # interrupted (KeyboardInterrupt in this thread): no orphan
            raise
        finally:
            with self._lock:
                self._running.discard(proc)
            orphans.release(proc.pid)
        return Outcome(
            proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )

    def _start(self, args: list[str], cwd: str) -> subprocess.Popen[bytes]:
        """Start the program; an APE llamafile that Linux refuses (ENOEXEC, no binfmt
        handler) is started once more through `sh`, and whichever worked is remembered."""
        launchers = [self._launcher] if self._launcher is not None else [[], ["sh"]]
        orphans.arm()
        for launcher in launchers:
            with self._lock:
                if self._closed:
                    raise Transient(f"{self.url}: the run is stopping")
                try:
                    proc = subprocess.Popen(
                        [*launcher, str(self.path), *args],
                        cwd=cwd,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        start_new_session=True,  # its own process group: killed as one
                    )
                except FileNotFoundError:
                    raise Unreachable(f"{self.url}: the file is gone") from None
                except PermissionError:
                    raise Rejected(
                        f"{self.url}: not executable; run: chmod +x {self.path}"
                    ) from None
                except OSError as e:
                    if e.errno == errno.ENOEXEC and not launcher:
                        continue  # an APE binary: try `sh PATH ...`
                    if e.errno == errno.E2BIG:
                        raise Rejected(f"{self.url}: the prompt is too long to pass") from None
                    raise Rejected(f"{self.url} cannot be started: {e.strerror}") from None
                self._launcher = launcher
                self._running.add(proc)
                orphans.guard(proc.pid)
                return proc
        raise Rejected(
            f"{self.url} cannot be started: exec format error (not a program for this system)"
        )

    def _raise_for_outcome(self, outcome: Outcome) -> None:
        code = outcome.returncode
        if code == 0:
            return
        if code < 0:  # a signal: a crash, or our own kill when the run stops
            raise Transient(f"{self.url} was killed by {_status(code)}: {outcome.last_line}")
        too_long = _TOO_LONG.search(outcome.stderr)
        if too_long:
            tokens, most = int(too_long.group(1)), int(too_long.group(2))
            raise ContextOverflow(
                f"{self.url}: the prompt is too long ({tokens} tokens, max {most})",
                tokens,
                most + 4,
            )
        raise Rejected(f"{self.url} failed (exit {code}): {outcome.last_line}")


def _args(
    prompt: str,
    *,
    max_tokens: int | None = None,
    request: Request | None = None,
    folder: Path | None = None,
) -> list[str]:
    """llamafile's flags for one request. The prompt stays one argv element (or a file
    in the temporary folder when it is too long for one)."""
    request = request or Request(prompt=prompt, max_tokens=max_tokens or 1)
    prompt = prompt.replace("\0", "")  # argv cannot carry NUL bytes
    args = ["--cli"]
    if folder is not None and len(prompt.encode()) > MAX_ARG_BYTES:
        prompt_file = folder / "prompt.txt"
        prompt_file.write_text(prompt, encoding="utf-8")
        args += ["-f", str(prompt_file)]
    else:
        args += ["-p", prompt]
    args += ["-n", str(request.max_tokens), "--temp", f"{request.temperature:g}"]
    args += ["--silent-prompt", "--log-disable"]
    if request.repeat_penalty != 1.0:
        args += ["--repeat-penalty", f"{request.repeat_penalty:g}"]
    if request.grammar:
        args += ["--grammar", request.grammar]
    if request.images:
        if folder is None:
            raise ValueError("an image request needs a folder for its image file")
        for i, image in enumerate(request.images[:1]):  # --cli takes one image
            image_file = folder / f"image-{i + 1}.jpg"
            image_file.write_bytes(image)
            args += ["--image", str(image_file)]
    return args


def _with_image_marker(request: Request) -> Request:
    """llava-cli puts the image where the prompt says `<image>` (else it wraps the prompt in
    its own template): put it at the start of the user's turn, as the server path does."""
    if not request.images or IMAGE_MARKER in request.prompt:
        return request
    return replace(request, prompt=f"{IMAGE_MARKER}\n{request.prompt}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _status(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)
