"""`pipe personas`: name, kind, first line and source of every card and user persona; card
text is untrusted, so a terminal sees it escaped and cut to its width, --json as it is."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from pipeline.personas.find import LIBRARIAN
from tests.conftest import ROOT, pipe_cmd
from tests.personas.make import b64, json_card, png_card, v2

HOSTILE = "Evil \x1b]0;pwned\x07 \x1b[2J\u202egpj.exe"


def tavern(tmp_path: Path) -> Path:
    characters = tmp_path / "ST" / "data" / "default-user" / "characters"
    characters.mkdir(parents=True)
    png_card(characters / "evil.png", ("tEXt", "chara", b64(v2(name="Evil", description=HOSTILE))))
    json_card(characters / "broken.json", {"spec": "chara_card_v2"})
    return tmp_path / "ST"


def pipe(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pipe_cmd(*args), capture_output=True, text=True, cwd=ROOT, **kwargs)


def test_lists_the_built_in_librarian() -> None:
    r = pipe("personas")
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    assert line.startswith("Wren  card  Wren is the reference librarian")
    assert line.endswith(f"  ({LIBRARIAN})")


def test_json_keeps_the_text_as_it_is_and_names_the_problem(tmp_path: Path) -> None:
    r = pipe("personas", "--json", "--sillytavern", str(tavern(tmp_path)))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"broken", "Evil", "Wren"}
    assert by_name["Evil"]["first_line"] == HOSTILE
    assert "not a character card (no 'name')" in by_name["broken"]["problem"]
    assert set(by_name["Wren"]) == {"kind", "name", "first_line", "source", "problem"}


def test_an_unreadable_card_is_a_note_not_a_failure(tmp_path: Path) -> None:
    r = pipe("personas", "--sillytavern", str(tavern(tmp_path)))
    assert r.returncode == 0
    assert [line for line in r.stderr.splitlines() if "broken.json" in line] == [
        f"pipe: skipped {tmp_path}/ST/data/default-user/characters/broken.json: "
        "not a character card (no 'name')"
    ]
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["Evil", "Wren"]


def test_a_terminal_sees_card_text_escaped_and_cut_to_its_width(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100"}
    args = pipe_cmd("personas", "--sillytavern", str(tavern(tmp_path)))
    with subprocess.Popen(args, stdout=slave, stderr=subprocess.DEVNULL, cwd=ROOT, env=env):
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # Linux: EIO once the other end is closed
                break
            if not chunk:
                break
            shown += chunk
    os.close(master)
    lines = shown.decode().splitlines()
    assert "\x1b" not in shown.decode() and "\u202e" not in shown.decode()
    evil = tmp_path / "ST" / "data" / "default-user" / "characters" / "evil.png"
    escaped = "Evil \\e]0;pwned\\x07 \\e[2J\\u202egpj.exe"
    wren = json.loads(pipe("personas", "--json").stdout)["first_line"]
    assert lines == [cut("Evil", escaped, str(evil), 100), cut("Wren", wren, str(LIBRARIAN), 100)]


def cut(name: str, first: str, source: str, columns: int) -> str:
    """The line a terminal of `columns` shows: the first line cut to fit (at least 20
    characters of it), the name and the whole source kept."""
    head, tail = f"{name:<4}  card  ", f"  ({source})"
    room = max(columns - len(head) - len(tail), 20)
    assert len(first) > room  # the test's texts are long enough to be cut
    return head + first[: room - 1] + "…" + tail


def test_json_is_ascii_so_no_control_character_reaches_a_terminal(tmp_path: Path) -> None:
    r = pipe("personas", "--json", "--sillytavern", str(tavern(tmp_path)))
    assert r.stdout.isascii() and "\\u202e" in r.stdout


def test_a_sillytavern_folder_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    r = pipe("personas", "--sillytavern", str(tmp_path / "nope"))
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "does not exist" in r.stderr
