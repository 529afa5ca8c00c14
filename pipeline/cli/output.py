"""What every command prints the same way: one line for people on stderr, data on stdout
(escaped on a terminal), the help's footer, and a run's messages as --quiet and --verbose
want them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pipeline import config, paths
from pipeline.server_text import redact
from pipeline.terminal import Shown

if TYPE_CHECKING:
    from pipeline.actions import Result


def help_footer(formatter: click.HelpFormatter) -> None:
    """Help ends with the exit codes and this machine's own folders (looked up when the
    help is shown, so PIPE_HOME and the XDG variables are honoured)."""
    with formatter.section("Exit codes"):
        formatter.write_dl(
            [
                ("0", "every item done (or skipped)"),
                ("1", "some items failed: one line each on stderr; a re-run tries them"),
                ("2", "a usage, recipe or settings error"),
                ("3", "no backend answers, or none can run the recipe"),
                ("130", "interrupted; finished items are saved"),
            ]
        )
    with formatter.section("Files"):
        for what, path in (
            ("User recipes (a built-in's name there replaces it):", paths.user_recipes_dir()),
            ("Settings (flags and environment variables win over them):", config.config_path()),
        ):
            formatter.write_text(what)
            # Unwrapped, so the path can be copied.
            formatter.write(f"{'':>{formatter.current_indent + 2}}{path}\n")


class Group(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        help_footer(formatter)


class Command(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        help_footer(formatter)


def say(message: str) -> None:
    """One line for people on stderr (never with a URL's password or an API key in it)."""
    click.echo(f"pipe: {Shown(sys.stderr).name(redact(message))}", err=True)


def echo(line: str, text: bool = False) -> None:
    """Data on stdout: a name-like line, or (text=True) an answer that keeps its breaks."""
    shown = Shown(sys.stdout)
    click.echo(shown.text(line) if text else shown.name(line))


def by_backend(answered: dict[str, int]) -> str:
    """`gpu1:8080 12, gpu2:8080 9`: busiest first."""
    ranked = sorted(answered.items(), key=lambda pair: -pair[1])
    return ", ".join(f"{url.removeprefix('http://')} {n}" for url, n in ranked)


class Messages:
    """People's messages go to stderr; --quiet keeps only errors. Information (the server
    used, a model started) is for a terminal or --verbose, so cron mails only news: the
    summary when something was done or failed, and errors. Messages carry file names and
    servers' words, so on a terminal their control characters are shown escaped."""

    def __init__(self, quiet: bool, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose

    def _chatty(self) -> bool:
        return not self.quiet and (self.verbose or sys.stderr.isatty())

    def info(self, message: str) -> None:
        if self._chatty() or (not self.quiet and message.startswith("warning:")):
            say(message)

    def summary(self, message: str, worth: bool) -> None:
        """The run's summary: when it has news (`worth`), or on a terminal."""
        if self._chatty() or (not self.quiet and worth):
            say(message)

    def error(self, message: str) -> None:
        say(message)

    def item_error(self, result: Result) -> None:
        self.error(f"{result.path}: {result.error}")

    def item_note(self, result: Result) -> None:
        self.info(f"{result.path}: skipped: {'; '.join(result.notes)}")
