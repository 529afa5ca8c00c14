"""Benchmark (issue #10): a llamafile run once per file (`--backend cli:FILE`) against the same
model started once as a server by pipe (`--model FILE`), on the real small model, 20 files:
at pipe's default -j and at -j 1.

The llamafile is played by the current llama.cpp build (llama-completion for --cli,
llama-server for the server), with gemma-3-270m from the registry. Also measured with bare
tools in the same run, for the gain pipe should keep: llama-completion once per file
against the same prompts sent one at a time to a warm llama-server. Targets: pipe's ratio
>= 1.7, and at -j 1 pipe keeps >= 95 % of the bare tools' gain, its start and stop included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
N = 20
WRAPPER = """#!{python}
# llamafile's --cli flags -> llama-completion's
import os, sys
args = ["{binary}", "-m", "{model}", "-no-cnv"]
for arg in sys.argv[1:]:
    if arg == "--cli" or arg == "--log-disable":
        continue  # llama-completion's --log-disable silences the answer too
    args.append("--no-display-prompt" if arg == "--silent-prompt" else arg)
os.execv(args[0], args)
"""


def bench_managed_vs_cli(tmp: Path) -> tuple[dict[str, Any], bool]:
    from tests import real_servers

    binaries = real_servers.llama_server_binary().parent
    model = real_servers.gemma_model()
    notes = tmp / "notes"
    notes.mkdir()
    paragraph = "The harbour master logged every boat that came in, its cargo and its crew. "
    for i in range(N):
        (notes / f"note{i:02}.md").write_text(f"Log {i}. " + paragraph * 18)
    wrapper = tmp / "gemma-3-270m.llamafile"
    wrapper.write_text(
        WRAPPER.format(python=sys.executable, binary=binaries / "llama-completion", model=model)
    )
    wrapper.chmod(0o755)
    settings = ["--set", "ask.max_tokens=48", "-q"]

    def pipe(*args: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "run",
                "summarize-text",
                str(notes),
                *args,
                *settings,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        return time.perf_counter() - start

    pipe_cli = pipe("--backend", f"cli:{wrapper}", "--db", str(tmp / "cli.db"))
    managed = ["--model", str(model), "--server-binary", str(binaries / "llama-server")]
    # At pipe's default -j (the server's slots), and one at a time as the bare side sends.
    pipe_managed = pipe(*managed, "--db", str(tmp / "managed.db"))
    pipe_managed_1 = pipe(*managed, "--db", str(tmp / "managed-1.db"), "-j", "1")

    # The bare tools get pipe's own prompts (the recipe's, in the model's chat format).
    from pipeline import recipe as recipes
    from pipeline.backends.chat_formats import FORMATS, guess_format

    step = recipes.load("summarize-text").steps[0]
    fmt = FORMATS[guess_format(model.name)]
    stops = [*step.stop, *fmt.stop]

    # The bare tools: one process per file, then the requests alone to a warm server.
    texts = [
        fmt.wrap(step.prompt.render({"text": p.read_text()}), step.system)
        for p in sorted(notes.glob("*.md"))
    ]
    start = time.perf_counter()
    for text in texts:
        subprocess.run(
            [
                str(binaries / "llama-completion"),
                "-m",
                str(model),
                "-no-cnv",
                "-p",
                text,
                "-n",
                "48",
                "--temp",
                "0",
                "--repeat-penalty",
                "1.1",
                "--no-display-prompt",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    bare_cli = time.perf_counter() - start
    with (
        real_servers.llama_server(tmp) as server,
        httpx.Client(base_url=server.url, timeout=300) as c,
    ):
        start = time.perf_counter()
        for text in texts:
            body = {
                "prompt": text,
                "n_predict": 48,
                "temperature": 0,
                "repeat_penalty": 1.1,
                "stop": stops,
                "cache_prompt": True,
            }
            c.post("/completion", json=body).raise_for_status()
        bare_server = time.perf_counter() - start
    ratio, bare_ratio = pipe_cli / pipe_managed, bare_cli / bare_server
    ratio_1 = pipe_cli / pipe_managed_1
    figures = {
        "pipe cli s": round(pipe_cli, 1),
        "pipe managed s": round(pipe_managed, 1),
        "ratio": round(ratio, 2),
        "pipe managed -j 1 s": round(pipe_managed_1, 1),
        "ratio -j 1": round(ratio_1, 2),
        "bare cli s": round(bare_cli, 1),
        "bare warm server s": round(bare_server, 1),
        "bare ratio": round(bare_ratio, 2),
        "gain kept (-j 1)": f"{(ratio_1 - 1) / (bare_ratio - 1):.0%}" if bare_ratio > 1 else "n/a",
    }
    return figures, ratio >= 1.7 and ratio_1 - 1 >= 0.95 * (bare_ratio - 1)
