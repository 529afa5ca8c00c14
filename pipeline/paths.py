"""Where pipe keeps user recipes and its database (XDG, with environment overrides).

`PIPE_HOME` moves both at once (tests point it at a temporary folder); `PIPE_CONFIG_DIR`
and `PIPE_DATA_DIR` move one each; `PIPE_DB` names the database file itself.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def config_dir() -> Path:
    if os.environ.get("PIPE_CONFIG_DIR"):
        return Path(os.environ["PIPE_CONFIG_DIR"])
    if os.environ.get("PIPE_HOME"):
        return Path(os.environ["PIPE_HOME"])
    return _xdg("XDG_CONFIG_HOME", ".config") / "pipe"


def data_dir() -> Path:
    if os.environ.get("PIPE_DATA_DIR"):
        return Path(os.environ["PIPE_DATA_DIR"])
    if os.environ.get("PIPE_HOME"):
        return Path(os.environ["PIPE_HOME"])
    return _xdg("XDG_DATA_HOME", ".local/share") / "pipe"


def user_recipes_dir() -> Path:
    return config_dir() / "recipes"


def default_db_path() -> Path:
    if os.environ.get("PIPE_DB"):
        return Path(os.environ["PIPE_DB"])
    return data_dir() / "pipe.db"


def replaced_dir(db_path: Path | str) -> Path:
    """Where the bytes of files pipe replaced are kept (one file per sha256): beside the
    database whose journal names them, so the two move together (`PIPE_DB`); the data
    folder for a database in memory."""
    if str(db_path) == ":memory:":
        return data_dir() / "replaced"
    return Path(db_path).parent / "replaced"


def display_path(path: str) -> str:
    """How a file is keyed in the store: its absolute path as text, with bytes that are not
    UTF-8 shown as \\xNN (names stay unique, and SQLite gets valid text)."""
    absolute = os.path.abspath(path)
    try:
        absolute.encode("utf-8")
        return absolute
    except UnicodeEncodeError:
        return os.fsencode(absolute).decode("utf-8", "backslashreplace")
