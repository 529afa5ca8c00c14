"""A fake `.llamafile` in server mode: `tests/fakes/llamafile.py --server --nobrowser --port P`.

Like the real one it writes `llama.log` into its working folder, listens late (it "loads the
model" first) and then answers 503 "Loading model" for a while, before serving llama.cpp's
API (tests.fakes.llama.FakeLlama as the old llamafile server). Knobs, from the environment so that
they pass through pipe to the process it starts:

FAKE_LLAMAFILE_LISTEN_DELAY  seconds before it binds its port (default 0.3)
FAKE_LLAMAFILE_LOADING       seconds of 503 "Loading model" after that (default 0.3;
                             "inf": never ready)
FAKE_LLAMAFILE_EXIT          exit at once with this code, after a line in the log
FAKE_LLAMAFILE_LATENCY       seconds per completion (default 0)
FAKE_LLAMAFILE_PIDFILE       write the process id here once started
FAKE_LLAMAFILE_ARGSFILE      write its arguments here, one a line
FAKE_LLAMAFILE_STARTS        append a line here each time it is started
FAKE_LLAMAFILE_MODEL         the model name it reports (default fake.gguf)
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.llama import FakeLlama  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--nobrowser", action="store_true")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mmproj")
    parser.add_argument("-m", "--model")  # as llama-server: -m model.gguf means serve it
    args, _ = parser.parse_known_args()
    env = os.environ
    if env.get("FAKE_LLAMAFILE_PIDFILE"):
        partial = Path(env["FAKE_LLAMAFILE_PIDFILE"] + ".partial")
        partial.write_text(str(os.getpid()))
        os.replace(partial, env["FAKE_LLAMAFILE_PIDFILE"])  # never seen half-written
    if env.get("FAKE_LLAMAFILE_STARTS"):
        with open(env["FAKE_LLAMAFILE_STARTS"], "a") as starts:
            starts.write(f"{os.getpid()}\n")
    if env.get("FAKE_LLAMAFILE_ARGSFILE"):
        Path(env["FAKE_LLAMAFILE_ARGSFILE"]).write_text("\n".join(sys.argv[1:]) + "\n")
    with open("llama.log", "a", buffering=1) as log:

        def say(line: str) -> None:  # as llamafile: to llama.log and to stderr
            log.write(line + "\n")
            print(line, file=sys.stderr, flush=True)

        say(f"fake llamafile {' '.join(sys.argv[1:])}")
        if env.get("FAKE_LLAMAFILE_EXIT"):
            say("error: failed to load model 'fake.gguf'")
            return int(env["FAKE_LLAMAFILE_EXIT"])
        if not args.server and not args.model:
            say("only --server mode is faked here")
            return 2
        say("llama_model_load: loading model from fake.gguf")
        time.sleep(float(env.get("FAKE_LLAMAFILE_LISTEN_DELAY", "0.3")))
        loading = float(env.get("FAKE_LLAMAFILE_LOADING", "0.3"))
        FakeLlama(
            port=args.port,
            llamafile="0.8.1",
            vision=bool(args.mmproj),
            model=env.get("FAKE_LLAMAFILE_MODEL", "fake.gguf"),
            loading=min(loading, 1e9),
            latency=float(env.get("FAKE_LLAMAFILE_LATENCY", "0")),
        ).start()
        say(f"HTTP server listening port={args.port} (model still loading)")
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
