"""The portraits a bench draws stay in memory unless `--keep DIR` is given; then each is
saved there under a new name (`librarian-127.0.0.1-5001-1.png`), never over a file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.errors import PipeError


class NotReplaced(PipeError):
    """A portrait's name is taken in the --keep folder: that backend's /sd you fails."""


def slug(text: str) -> str:
    """`text` as a piece of a file name: letters, digits, dots and dashes."""
    text = re.sub(r"^[a-z0-9+.-]+://", "", text.strip().lower())
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-.") or "x"


def names(persona: str, backend: str, n: int) -> list[str]:
    return [f"{slug(persona)}-{slug(backend)}-{i}.png" for i in range(1, n + 1)]


def check_free(folder: Path, wanted: list[str]) -> None:
    """Refuse at once (before any picture is drawn) if a name is taken."""
    for name in wanted:
        if os.path.lexists(folder / name):
            raise NotReplaced(f"{folder / name} exists; not replacing it (--keep)")


def save(path: Path, png: bytes) -> None:
    """Write a new file, never over one (made meanwhile, or a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise NotReplaced(f"{path} exists; not replacing it (--keep)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(png)
