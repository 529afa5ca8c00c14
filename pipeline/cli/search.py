"""`pipe search QUERY`: the answers pipe holds, searched (store/search.py does the search;
this parses and prints). Answers are a model's words: on a terminal every piece is escaped
before the matches are highlighted, and --json keeps them as they are."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from pipeline import config
from pipeline.cli.history import open_existing
from pipeline.cli.options import BoundType, db_option, json_option
from pipeline.cli.output import say
from pipeline.errors import UsageError
from pipeline.terminal import Shown, escape

if TYPE_CHECKING:
    from pipeline.store.search import Hit

LIMIT = config.Bound(1, 1_000_000, whole=True)
HIGHLIGHT, PLAIN = ("\x1b[1;33m", "\x1b[0m"), ("[", "]")


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--recipe", metavar="NAME", help="Only this recipe's answers.")
@click.option(
    "--under",
    metavar="DIR",
    type=click.Path(file_okay=True, dir_okay=True),
    help="Only files below this folder (or this file).",
)
@click.option(
    "--since",
    metavar="DATE",
    help="Only answers recorded since then: 2026-12-01 or 2026-12-01T18:30 (local time).",
)
@click.option(
    "-n",
    "--limit",
    type=BoundType(LIMIT),
    default=20,
    show_default=True,
    help="How many hits.",
)
@json_option("JSON Lines: path, recipe, snippet, rank, answer, recorded_path, updated.")
@db_option
def search(
    query: tuple[str, ...],
    recipe: str | None,
    under: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
) -> None:
    """Search every answer pipe holds (FTS5 query syntax: words, "a phrase", sun*, OR,
    NOT), best match first: each file where it is now (after pipe's renames), its recipe
    and the answer around the match. Files no longer there are left out.

    \b
    pipe search dog on a beach
    pipe search sunset --recipe describe-images --json | jq -r .path

    Exit 0 with hits, 1 with none (nothing on stdout, like grep), 2 for a query or option
    pipe cannot read.
    """
    from pipeline.paths import display_path
    from pipeline.store.search import Where

    where = Where(
        recipe=recipe,
        under=display_path(under) if under is not None else None,
        since=_since(since) if since is not None else None,
    )
    store = open_existing(db)
    try:
        hits = store.search.search(" ".join(query), where, limit)
    finally:
        store.close()
    if not hits:
        say("no answer matches")
        sys.exit(1)
    for hit in hits:
        click.echo(_json(hit) if as_json else _shown(hit))


def _since(value: str) -> str:
    """A date or time (local unless it says its zone) as the store's UTC ISO text."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since: expected a date like 2026-12-01 or 2026-12-01T18:30, got {value!r}"
        ) from None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _json(hit: Hit) -> str:
    return json.dumps(
        {
            "path": hit.path,
            "recipe": hit.recipe,
            "snippet": hit.snippet_text(*PLAIN),
            "rank": round(hit.rank, 6),
            "answer": hit.answer,
            "recorded_path": hit.recorded,
            "updated": hit.updated,
        },
        ensure_ascii=False,
    )


def _shown(hit: Hit) -> str:
    """Two lines: the path and recipe, then the snippet. On a terminal each piece of the
    answer is escaped first and only pipe's own highlight is raw; elsewhere, as stored."""
    if Shown(sys.stdout).raw:
        return f"{hit.path}  {hit.recipe}\n    {hit.snippet_text(*PLAIN)}"
    opening, closing = PLAIN if os.environ.get("NO_COLOR") else HIGHLIGHT
    snippet = "".join(
        f"{opening}{escape(text)}{closing}" if match else escape(text)
        for text, match in hit.snippet
    )
    return f"{escape(hit.path)}  {escape(hit.recipe)}\n    {snippet}"
