"""`pipe personas`: the character cards and user personas pipe can see, one line each. A
card's text comes from the internet: on a terminal it is shown escaped and cut to the
width; --json gives it whole, every control character as a JSON escape."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import click

from pipeline.cli.options import json_option
from pipeline.cli.output import Command, say
from pipeline.terminal import Shown


@click.command(name="personas", cls=Command)
@json_option("One JSON object a line: kind, name, first_line, source, problem.")
@click.option(
    "--sillytavern",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="SillyTavern's folder: its data/*/characters and data/*/settings.json personas.",
)
def personas(as_json: bool, sillytavern: Path | None) -> None:
    """List the character cards (--persona) and user personas (--user-persona) found:
    name, kind, the description's first line, and where each comes from."""
    from pipeline.personas.find import found

    rows = found(sillytavern)
    if as_json:
        for row in rows:
            click.echo(json.dumps(dataclasses.asdict(row)))  # ASCII: no control reaches a terminal
        return
    for row in rows:
        if row.problem:
            say(f"skipped {row.problem}")
    shown = Shown(sys.stdout)
    readable = [row for row in rows if not row.problem]
    width = max((len(shown.name(row.name)) for row in readable), default=0)
    columns = shutil.get_terminal_size().columns if not shown.raw else 0
    for row in readable:
        head = f"{shown.name(row.name):<{width}}  {row.kind:<4}  "
        tail = f"  ({shown.name(row.source)})"
        click.echo(head + _fit(shown.name(row.first_line), columns, len(head) + len(tail)) + tail)


def _fit(text: str, columns: int, taken: int) -> str:
    """The first line cut so the whole line fits a terminal (never below 20 characters:
    the source path matters more than a tidy edge); whole when not a terminal."""
    room = max(columns - taken, 20)
    if not columns or len(text) <= room:
        return text
    return text[: room - 1] + "…"
