"""A fake `model.llamafile --cli`: what llamafile's one-shot mode does, without a model.

Honours `--cli -p PROMPT | -f FILE, -n N, --temp T, --silent-prompt, --log-disable,
--repeat-penalty R, --grammar G, --image FILE`. The answer (stdout, one trailing newline) is
deterministic: `ANSWER <sha1 of the prompt, 8 hex> n=N image=<bytes or 0> grammar=<0|1>`.
Without `--log-disable` it writes `main.log` into its cwd, as llamafile does.

Knobs (environment):
- FAKE_CLI_RECORD=DIR: write each call's argv and cwd as JSON to DIR/<pid>.json (and the
  pid to DIR/<pid>.pid while it runs, removed at a normal exit).
- FAKE_CLI_STRAY_LOG=1: write `llava.log` into the cwd even with `--log-disable`.
- FAKE_CLI_LOAD_FAIL=1: "failed to load model" on stderr, exit 1 (every call).
- FAKE_CLI_FAIL_ON=WORD: when WORD is in the prompt, a stderr line and exit 1.
- FAKE_CLI_EMPTY_ON=WORD: when WORD is in the prompt, print nothing, exit 0.
- FAKE_CLI_HANG_ON=WORD: when WORD is in the prompt, sleep forever.
- FAKE_CLI_MAX_PROMPT=N: a prompt longer than N characters: "prompt is too long", exit 1.
- FAKE_CLI_NO_IMAGE=1: `--image` fails (a text-only model), exit 1.
- FAKE_CLI_SUFFIX=TEXT: appended to the answer (to test stop strings).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

VALUED = {"-p", "-f", "-n", "--temp", "--repeat-penalty", "--grammar", "--image", "-m"}
FLAGS = {"--cli", "--silent-prompt", "--log-disable"}


def parse(argv: list[str]) -> dict[str, str | bool]:
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in VALUED:
            options[arg] = argv[i + 1]
            i += 2
        elif arg in FLAGS:
            options[arg] = True
            i += 1
        else:
            print(f"error: unknown argument: {arg}", file=sys.stderr)
            sys.exit(2)
    return options


def main() -> int:
    argv = sys.argv[1:]
    options = parse(argv)
    record = os.environ.get("FAKE_CLI_RECORD")
    pid_file = Path(record) / f"{os.getpid()}.pid" if record else None
    if record:
        call = {"argv": argv, "cwd": os.getcwd()}
        (Path(record) / f"{os.getpid()}.json").write_text(json.dumps(call))
        assert pid_file is not None
        pid_file.write_text(str(os.getpid()))
    if not options.get("--log-disable"):
        Path("main.log").write_text("log of a fake llamafile\n")
    if os.environ.get("FAKE_CLI_STRAY_LOG"):
        Path("llava.log").write_text("a stray log\n")
    print("note: loading model from fake.gguf", file=sys.stderr)
    if os.environ.get("FAKE_CLI_LOAD_FAIL"):
        print("llama_model_load: error loading model: bad magic", file=sys.stderr)
        print("fake: failed to load model 'fake.gguf'", file=sys.stderr)
        return 1
    if "--cli" not in options or "-n" not in options or "--temp" not in options:
        print("error: --cli, -n and --temp are expected", file=sys.stderr)
        return 2
    if "-f" in options:
        prompt = Path(str(options["-f"])).read_text(encoding="utf-8")
    else:
        prompt = str(options.get("-p", ""))

    def on(knob: str) -> bool:
        word = os.environ.get(knob)
        return bool(word) and word in prompt

    if on("FAKE_CLI_HANG_ON"):
        while True:
            time.sleep(60)
    if on("FAKE_CLI_FAIL_ON"):
        print("fake: something went wrong", file=sys.stderr)
        print("fake: GGML_ASSERT failed for this prompt", file=sys.stderr)
        return 1
    limit = os.environ.get("FAKE_CLI_MAX_PROMPT")
    if limit and len(prompt) > int(limit):
        print(
            f"main: prompt is too long ({len(prompt)} tokens, max {int(limit) - 4})",
            file=sys.stderr,
        )
        return 1
    image = 0
    if "--image" in options:
        if os.environ.get("FAKE_CLI_NO_IMAGE"):
            print("fake: --image needs a vision model (--mmproj)", file=sys.stderr)
            return 1
        image = len(Path(str(options["--image"])).read_bytes())
    if not on("FAKE_CLI_EMPTY_ON"):
        digest = hashlib.sha1(prompt.encode()).hexdigest()[:8]
        grammar = int("--grammar" in options)
        answer = f"ANSWER {digest} n={options['-n']} image={image} grammar={grammar}"
        print(answer + os.environ.get("FAKE_CLI_SUFFIX", ""))
    print("llama_print_timings: total time = 1.00 ms", file=sys.stderr)
    if pid_file:
        pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
