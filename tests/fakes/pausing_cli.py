"""The real CLI with every step of the rename and replace protocols slowed down, for
crash tests:

    python -m tests.fakes.pausing_cli SECONDS ARGS...   (= pipe ARGS..., pausing SECONDS
                                                          between journaled, linked,
                                                          unlinked and marked; and between
                                                          journaled, written, replaced,
                                                          synced and marked)

The pause is injected through `pipeline.renaming.moves.between_steps` and
`pipeline.actions.replacing.between_steps`, so production code reads no test setting. Run
it from the repository's root, where `tests` is importable.
"""

from __future__ import annotations

import sys
import time

from pipeline.actions import replacing
from pipeline.renaming import moves


def main(argv: list[str]) -> None:
    pause = float(argv[0])
    moves.between_steps = lambda: time.sleep(pause)
    replacing.between_steps = lambda: time.sleep(pause)
    sys.argv = ["pipe", *argv[1:]]
    from pipeline.cli import main as pipe_main

    pipe_main()


if __name__ == "__main__":
    main(sys.argv[1:])
