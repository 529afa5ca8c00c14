"""Reading the TOML people give pipe (config.toml, recipes, `--set` values) so that any
content is one line saying what is wrong: tomllib raises UnicodeDecodeError on bytes that
are not UTF-8 and RecursionError on deep nesting, and a deep value would break the code
that walks it later."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

MAX_BYTES = 1 << 20  # a recipe or config file is a few KB
MAX_DEPTH = 32  # tables and lists inside each other


class Unreadable(ValueError):
    """The TOML cannot be used; the message is one line (without the file's name)."""


class TooDeep(Unreadable):
    """Tables and lists nested past MAX_DEPTH."""


def read(path: Path) -> dict[str, Any]:
    """A TOML file's tables. OSError (FileNotFoundError too) passes through."""
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Unreadable(f"over {MAX_BYTES >> 20} MB; a recipe or config file is a few KB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unreadable(f"not valid TOML: not UTF-8 text (byte {e.start + 1})") from None
    return loads(text)


def loads(text: str) -> dict[str, Any]:
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise Unreadable(f"not valid TOML: {e}") from None
    except RecursionError:
        raise TooDeep(f"not valid TOML: nested more than {MAX_DEPTH} deep") from None
    if _too_deep(value, MAX_DEPTH):
        raise TooDeep(f"not valid TOML: nested more than {MAX_DEPTH} deep")
    return value


def _too_deep(value: Any, room: int) -> bool:
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    return room <= 0 or any(_too_deep(child, room - 1) for child in children)
