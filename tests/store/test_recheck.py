"""The re-check's hot path: a walked file's key is the one display_path gives, made from its
folder's; the input patterns, joined into one expression, take what each pattern alone
takes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.paths import display_path
from pipeline.sources import Filters, _match, expand


def test_a_walked_files_key_is_its_display_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "a b" / "é"
    folder.mkdir(parents=True)
    names = [b"plain.txt", "naïve.txt".encode(), b"bad-\xff.txt", b"x y.txt"]
    for name in names:
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(b"text")
    bad = os.path.join(os.fsencode(tmp_path), b"\xfe-folder")
    os.mkdir(bad)
    with open(os.path.join(bad, b"in.txt"), "wb") as f:
        f.write(b"text")
    monkeypatch.chdir(tmp_path)
    entries = list(expand([".", str(tmp_path)], Filters(patterns=("*.txt",))))
    assert len(entries) == 2 * (len(names) + 1)
    for entry in entries:
        assert entry.key == display_path(entry.path), entry.path


@pytest.mark.parametrize(
    ("patterns", "exclude"),
    [
        (("*.txt", "*.MD", "notes-?.*", "[ab]*.csv"), ()),
        (("*",), ("*.tmp", "sub/*.txt")),
        (("sub/*.txt", "*.md"), ("b*",)),
        ((), ()),
    ],
)
def test_joined_patterns_take_what_each_takes(
    patterns: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    filters = Filters(patterns=patterns, exclude=exclude)
    names = ["a.txt", "A.TXT", "b.md", "notes-1.x", "notes-12.x", "a.csv", "c.csv", "x.tmp"]
    for name in names:
        for relative in (name, f"sub/{name}", f"other/{name}"):
            one_by_one = not any(_match(name, relative, p) for p in exclude) and any(
                _match(name, relative, p) for p in patterns
            )
            assert filters.wanted(name, relative) == one_by_one, (name, relative)
