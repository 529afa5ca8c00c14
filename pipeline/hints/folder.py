"""`{folder}`: the name of the folder a file is in ("Beach 2019" for
`~/Pictures/Beach 2019/IMG_1234.jpg`), often the one word a person gave the photos."""

from __future__ import annotations

import os


def folder_of(path: str) -> str:
    """The parent folder's name ("" for a file in the root, or an item that is no file)."""
    return os.path.basename(os.path.dirname(os.path.abspath(path)))
