"""`pipe prune`: free the bytes pipe kept of the files it replaced (merged sidecars, photos
with metadata written in). A pruned run can no longer be undone; `pipe runs` shows what
each run keeps."""

from __future__ import annotations

import click

from pipeline import config
from pipeline.cli.options import BoundType, db_option
from pipeline.cli.output import echo, say

KEEP = config.Bound(0, 1_000_000, whole=True)


@click.command()
@click.option(
    "--keep",
    type=BoundType(KEEP),
    default=10,
    show_default=True,
    help="Keep the bytes of this many of the newest runs that replaced files.",
)
@click.option("--all", "everything", is_flag=True, help="Free the bytes of every run.")
@db_option
def prune(keep: int, everything: bool, db: str | None) -> None:
    """Free the bytes kept of replaced files, for all but the newest runs (--keep N) or for
    every run (--all). Those runs can no longer be undone."""
    from pipeline.actions import restoring
    from pipeline.cli.history import open_existing

    store = open_existing(db)
    runs = store.replaced.prunable_runs(0 if everything else keep)
    if not runs:
        say("nothing to prune: no older run keeps replaced bytes")
        return
    freed = restoring.prune(store, runs)
    shown = ", ".join(map(str, runs))
    echo(f"pruned runs {shown}: {size_text(freed)} freed; they can no longer be undone")


def size_text(size: int) -> str:
    """Bytes for people: 0 B, 812 B, 4.2 KiB, 1.3 MiB, 2.0 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # not reached
