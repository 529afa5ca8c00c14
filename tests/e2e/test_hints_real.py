"""Integration: `language` widens rename-images' grammar to every script's letters, and real
servers (current llama.cpp, and llamafile's old parser, which gets the repetitions
expanded) take it: every name is made of the grammar's words."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from tests import real_servers
from tests.conftest import ROOT, run_pipe

pytestmark = pytest.mark.real

PHOTOS = ROOT / "samples" / "photos"


@pytest.mark.parametrize(
    ("make", "mmproj"),
    [
        (real_servers.llama_server, "tiny-mmproj-gemma3-270m.gguf"),
        (partial(real_servers.llamafile_server, version="0.8.1"), "tiny-mmproj-old-smollm2.gguf"),
    ],
    ids=["llama-server", "llamafile-0.8.1"],
)
def test_a_german_rename_for_real(
    make: Callable[..., real_servers.RealServer], mmproj: str, tmp_path: Path
) -> None:
    folder = tmp_path / "Fotos"
    folder.mkdir()
    for name in ("DSCN0010.jpg", "Kodak_CX7530.jpg"):
        shutil.copy2(PHOTOS / name, folder / name)
    recipe = str(ROOT / "recipes" / "rename-images.toml")
    with make(tmp_path, "--mmproj", str(real_servers.projector(mmproj))) as server:
        r = run_pipe(
            "run", recipe, str(folder), "--backend", server.url, "--dry-run", "--json",
            "--set", "ask.language=de", "--set", "ask.max_tokens=16",
            "--set", "then.name={answer|words}{ext}",
            timeout=600,
        )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr  # 1: a nonsense answer may name nothing
    assert "grammar" not in r.stderr and "Traceback" not in r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    planned = [rec["new_path"] for rec in records if rec.get("new_path")]
    assert planned, r.stdout + r.stderr
    for path in planned:  # words of the grammar's letters, as |words joins them
        assert re.fullmatch(r"[^\W\d_]+(-[^\W\d_]+){0,11}", Path(path).stem), path
