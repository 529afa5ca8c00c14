"""The batch's new names, with the companions that move along (raw files, XMP, sidecars)."""

from __future__ import annotations

import bisect
import os
from pathlib import Path

from pipeline.renaming.moves import Move
from pipeline.renaming.names import plan_renames


def plan_moves(wanted: list[tuple[Path, str]], in_batch: set[str]) -> list[Move]:
    """New names for every file and its companions (IMG_1.CR2, IMG_1.xmp, IMG_1.jpg.txt move
    with IMG_1.jpg), collisions resolved against the disk and the whole batch."""
    listings: dict[Path, list[str]] = {}
    companions = {str(old): find_companions(old, in_batch, listings) for old, _ in wanted}

    def also_free(old: Path, candidate: Path) -> list[Path]:
        return [companion_target(old, c, candidate) for c in companions[str(old)]]

    moves: list[Move] = []
    for group, (old, new) in enumerate(plan_renames(wanted, also_free=also_free)):
        moves.append(Move(str(old), str(new), group))
        for companion in companions[str(old)]:
            target = companion_target(old, companion, new)
            moves.append(Move(str(companion), str(target), group, companion=True))
    return moves


def find_companions(photo: Path, in_batch: set[str], listings: dict[Path, list[str]]) -> list[Path]:
    """Files beside `photo` that belong to it: same stem with another extension (raw, XMP),
    or its full name plus a suffix (IMG_1.jpg.txt); never another photo of this batch.
    `listings` caches each folder's sorted names, read once for the whole batch."""
    if photo.parent not in listings:
        try:
            listings[photo.parent] = sorted(os.listdir(photo.parent), key=str.casefold)
        except OSError:
            listings[photo.parent] = []
    names = listings[photo.parent]
    stem, full = photo.stem.casefold(), photo.name.casefold() + "."
    # Companions sort right after the stem: search from there, stop past the prefix.
    start = bisect.bisect_left(names, stem, key=str.casefold)
    found = []
    for name in names[start:]:
        folded = name.casefold()
        if not folded.startswith(stem):
            break
        candidate = photo.parent / name
        if name == photo.name or str(candidate) in in_batch:
            continue
        belongs = os.path.splitext(folded)[0] == stem or folded.startswith(full)
        if belongs and candidate.is_file() and not candidate.is_symlink():
            found.append(candidate)
    return found


def companion_target(photo: Path, companion: Path, new_photo: Path) -> Path:
    if companion.name.casefold().startswith(photo.name.casefold() + "."):
        return new_photo.parent / (new_photo.name + companion.name[len(photo.name) :])
    return new_photo.parent / (new_photo.stem + companion.name[len(photo.stem) :])
