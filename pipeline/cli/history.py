"""What the state database remembers: `pipe runs`, `pipe show PATH` and `pipe undo [RUN]`.
The store is imported when a command runs, not when help is shown."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from pipeline import config, settings
from pipeline.cli.options import BoundType, db_option, json_option
from pipeline.cli.output import by_backend, echo, say
from pipeline.cli.prune import size_text
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.store.database import Store

opened: list[str] = []  # the database a command opened, for a read failing later


def open_existing(db: str | None) -> Store:
    from pipeline.store.database import Store

    path = settings.database(db)
    if not os.path.exists(path):
        raise UsageError(f"no database at {path} yet: run 'pipe run RECIPE PATH' first")
    opened.append(path)
    return Store(path)


@click.command()
@click.option(
    "-n",
    "--limit",
    type=BoundType(config.RUNS_LIMIT),
    default=20,
    show_default=True,
    help="How many runs.",
)
@json_option("JSON Lines.")
@db_option
def runs(limit: int, as_json: bool, db: str | None) -> None:
    """Past runs, newest first: id, recipe, start, counts (as the run's summary said them)
    and exit status; dry runs are marked, and the bytes kept to undo replaced files shown
    (pipe prune frees them)."""
    from pipeline.store.database import Counts

    store = open_existing(db)
    rows = store.runs(limit)
    kept = store.replaced.kept_bytes([row["id"] for row in rows])
    for row in rows:
        row["dry_run"] = bool(row["dry_run"])
        row["kept_bytes"] = kept.get(row["id"], 0)
        if as_json:
            for key in ("args", "backends"):  # stored as JSON text: given as JSON
                row[key] = json.loads(row[key]) if row[key] else None
            click.echo(json.dumps(row))
            continue
        status = (
            row["status"]
            if row["exit_code"] is None
            else f"{row['status']} (exit {row['exit_code']})"
        )
        if row["dry_run"]:
            status += ", dry run"
        echo(
            f"{row['id']:>5}  {row['recipe']:<18} {row['started'][:19].replace('T', ' ')}  "
            f"{Counts.of_run(row).words(row['dry_run'])}  {status}"
        )
        if row.get("backends"):
            echo(f"       answers by backend: {by_backend(json.loads(row['backends']))}")
        if row["kept_bytes"]:
            echo(f"       replaced files kept for undo: {size_text(row['kept_bytes'])}")


# A replacement's state (store/replaced.py) as `pipe show` says it.
REPLACED = {
    "planned": "interrupted",
    "applied": "written",
    "abandoned": "not written",
    "failed": "failed",
    "undone": "undone",
}


@click.command()
@click.argument("path")
@json_option("JSON Lines.")
@db_option
def show(path: str, as_json: bool, db: str | None) -> None:
    """One file's history: runs, answers, errors, timings, and its renames (under either
    name)."""
    from pipeline.store import history

    store = open_existing(db)
    rows = history.item_history(store, path)
    if not rows:
        raise UsageError(f"no history for {path} in {store.path}")
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        when = f"run {row['run_id']}  {row['started'][:19].replace('T', ' ')}"
        if row["event"] == "replaced":  # its sidecar, or the photo itself (embedded)
            state = REPLACED.get(row["state"], row["state"])
            echo(f"{when}  replaced  {row['path']}  ({row['kind']}, {state})")
            continue
        if row["event"] != "item":
            echo(f"{when}  {row['event']}  {row['path']} -> {row['new_path']}")
            continue
        took = f"{row['duration_ms'] / 1000:.1f} s" if row["duration_ms"] is not None else "-"
        tokens = (row["prompt_tokens"] or 0) + (row["completion_tokens"] or 0)
        echo(
            f"{when}  {row['recipe']}  {row['status']}  {took}  {tokens} tokens"
            f"  model {row['model'] or '-'}"
        )
        meta = json.loads(row["meta"]) if row["meta"] else {}
        for label, value in (
            ("note", row["note"]),
            ("error", row["error"]),
            *meta.items(),
            *_answer(row),
        ):
            if value:
                echo(f"    {label}: {str(value).strip()}".replace("\n", "\n    "), text=True)


def _answer(row: dict[str, Any]) -> list[tuple[str, str]]:
    """An item's answer as `show` labels it: text as it is, a picture by what it is."""
    if row.get("kind") != "picture" or not row["answer"]:
        return [("answer", row["answer"])]
    from pipeline.answers import Picture

    picture = Picture.from_json(row["answer"])
    return [
        (
            "picture",
            f"{picture.width}x{picture.height}, seed {picture.seed}, sha256 {picture.sha256}",
        ),
        ("drawn from", picture.infotext),
    ]


@click.command()
@click.argument("run_id", type=BoundType(config.RUN_ID), required=False)
@db_option
def undo(run_id: int | None, db: str | None) -> None:
    """Put back what a run changed (default: the last one), newest first: the names a rename
    run changed, and the files it replaced (merged sidecars) byte for byte.

    A file that changed since, or whose old name is taken now, is left alone and reported.
    """
    from pipeline.actions import restoring
    from pipeline.renaming import moves

    store = open_existing(db)
    journal, replaced = store.journal, store.replaced
    if run_id is not None and not journal.run_exists(run_id):
        raise UsageError(f"no run {run_id}")
    for outcome in moves.reconcile(store):
        say(f"journal: {outcome.old} -> {outcome.new}: {outcome.reason}")
    for settled in restoring.resolve(store):
        say(f"journal: {settled.path}: {settled.reason}")
    run_id = run_id or _newest(journal.last_run(), replaced.last_run())
    if run_id is None:
        undone = _newest(journal.last_undone_run(), replaced.last_undone_run())
        say(
            f"nothing to undo: run {undone} is already undone"
            if undone
            else "nothing to undo: no rename run has applied renames"
        )
        return
    if replaced.is_pruned(run_id):
        say(f"run {run_id}: cannot be undone: the bytes it replaced were pruned (pipe prune)")
        sys.exit(1)
    outcomes = restoring.undo_run(store, run_id)
    if not outcomes:
        say(
            f"nothing to undo: run {run_id} is already undone"
            if journal.has_undone(run_id) or replaced.has_undone(run_id)
            else f"nothing to undo in run {run_id}"
        )
        return
    sys.exit(_said(run_id, outcomes))


def _newest(*runs: int | None) -> int | None:
    return max((r for r in runs if r is not None), default=None)


def _said(run_id: int, outcomes: list[Any]) -> int:
    """Each outcome on its line, then a summary per kind; the exit code."""
    from pipeline.renaming.moves import Outcome

    renames, refused, restored, kept = 0, 0, 0, 0
    for outcome in outcomes:
        is_rename = isinstance(outcome, Outcome)
        renames += is_rename
        if outcome.state == "undone":
            restored += not is_rename
            shown = f"{outcome.old} -> {outcome.new}" if is_rename else outcome.path
            echo(shown if is_rename else f"{outcome.did} {shown}")
        else:
            refused += is_rename
            kept += not is_rename
            path = outcome.old if is_rename else outcome.path
            say(f"{path}: not undone: {outcome.reason}")
    if renames:
        say(f"run {run_id}: {renames - refused} renames undone, {refused} refused")
    if renames < len(outcomes):
        say(f"run {run_id}: {restored} files put back as they were, {kept} kept")
    return 1 if refused or kept else 0
