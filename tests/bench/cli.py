"""The real CLI, for the bench tests: `python -m tests.bench.cli ARGS` is `pipe ARGS`.

Until the personas part (#17) is merged, `pipeline.personas` has no `load()`: this puts in
one that returns a small test persona, so `pipe bench` runs end to end. Once the real one
is there it is used as it is (the shipped librarian)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import personas
from pipeline.personas.persona import Persona

TEST_PERSONA = Persona(
    name="Librarian",
    user="User",
    system="You are Librarian, a patient reference librarian who explains things plainly.",
    after="Answer as Librarian.",
    source="tests/bench/cli.py",
)


def _load(name: str, user: str | None = None, folder: Path | None = None) -> Persona:
    return TEST_PERSONA


def main() -> None:
    if not hasattr(personas, "load"):
        personas.load = _load  # type: ignore[attr-defined]
    sys.argv = ["pipe", *sys.argv[1:]]
    from pipeline.cli import main as pipe_main

    pipe_main()


if __name__ == "__main__":
    main()
