"""The `pipe` command: click commands that parse and print over the library (`pipeline.api`,
`pipeline.settings`). One module per command or group of small commands; each imports its
heavy modules inside the command, so `pipe --help` and `pipe recipes` stay quick."""

from __future__ import annotations

import os
import sys

import click

from pipeline import __version__
from pipeline.cli.bench import bench
from pipeline.cli.doctor import doctor
from pipeline.cli.history import opened, runs, show, undo
from pipeline.cli.output import Command, Group, echo, say
from pipeline.cli.personas import personas
from pipeline.cli.prune import prune
from pipeline.cli.run import run
from pipeline.cli.search import search
from pipeline.errors import PipeError


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def cli() -> None:
    """Map local generative-AI models over folders of files, resumably.

    \b
    pipe run summarize-text notes/
    find notes -name '*.md' | pipe run summarize-text -
    cat report.txt | pipe run summarize-text
    """


@click.command(name="recipes", cls=Command)
def list_recipes() -> None:
    """List built-in and user recipes, and where each comes from."""
    from pipeline import recipe

    rows = recipe.available()
    width = max((len(name) for name, *_ in rows), default=0)
    for name, origin, path, description in rows:
        echo(f"{name:<{width}}  {origin:<8}  {description}  ({path})")


for command in (
    run,
    doctor,
    list_recipes,
    personas,
    runs,
    show,
    search,
    undo,
    prune,
    bench,
):  # in the help's order
    cli.add_command(command)


def main() -> None:
    import sqlite3

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pipe: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `pipe`: the help is the answer
            e.show()
            sys.exit(2)
        # One line, like every other error (click's own is usage, hint, blank, error).
        ctx = e.ctx
        command = "pipe" if ctx is None or ctx.parent is None else f"pipe {ctx.info_name}"
        say(f"error: {e.format_message()} (see '{command} --help')")
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PipeError as e:
        say(f"error: {e}")
        sys.exit(e.exit_code)
    except sqlite3.Error as e:
        # A damaged page found by a query (`pipe show`): one line, not a traceback.
        from pipeline.store.errors import explain

        error = explain(e, opened[-1] if opened else None)
        say(f"error: {error}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("pipe: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `pipe run … | head`: the reader left; that is not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
