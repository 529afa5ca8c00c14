"""`pipe run RECIPE PATH...`: its options, and the summary it prints. The work is the
library's (`pipeline.api`), imported when the command runs, not when help is shown."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from pipeline import config, settings
from pipeline.actions import WRITE_ALIASES, write_choices
from pipeline.backends.registry import url_forms
from pipeline.cli.options import BoundType, db_option, given, json_option, setting
from pipeline.cli.output import Command, Messages, by_backend
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.engine import Item, Summary
    from pipeline.recipe import Recipe
    from pipeline.servers.managed import ManagedSpec


@dataclass(frozen=True)
class RunFlags:
    """`pipe run`'s options as click parsed them, before the config file fills the gaps."""

    backend_urls: tuple[str, ...]
    api_key_env: str | None
    model_name: str | None
    allow_mixed_models: bool
    sd_url: str | None
    model_file: str | None
    server_binary: str | None
    mmproj: str | None
    start_timeout: float
    jobs: int | None
    as_json: bool
    dry_run: bool
    write: str | None
    out_dir: str | None
    contact_sheet: str | None
    xmp_sidecar: str | None
    lines: bool
    overrides: tuple[str, ...]
    persona: str | None
    user_persona: str | None
    sillytavern: str | None
    redo: bool
    null_separated: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    hidden: bool
    quiet: bool
    verbose: bool
    retries: int
    timeout: float
    wait: float
    db: str | None


def run_options(func: Any) -> Any:
    """Every option of `pipe run`, in the order its help lists them."""
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return func


_RUN_OPTIONS = [
    setting(
        "backends",
        f"A server: {url_forms()}; or embedded, the embedded model. Repeat it for a pool"
        " that shares the work."
        " Env PIPE_BACKEND (several separated by spaces).",
        metavar="URL",
    ),
    setting(
        "api_key_env",
        "Send the API key in environment variable NAME as a Bearer token (OpenAI-compatible"
        " servers); the key itself is never stored or shown.",
        metavar="NAME",
    ),
    setting("model_name", "The model to use where a server has several (Ollama, LM Studio, vLLM)."),
    click.option(
        "--allow-mixed-models",
        is_flag=True,
        help="Several --backend servers may serve different models (answers then name them all).",
    ),
    setting(
        "sd_backend",
        "Image server URL (koboldcpp --sdmodel, AUTOMATIC1111 --api) for recipes that draw;"
        " default: the --backend server if it draws, else ports 5001 and 7860."
        " Env PIPE_SD_BACKEND.",
    ),
    click.option(
        "--model",
        "model_file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Start this model as a server for the run and stop it after: a .llamafile, or a"
        " .gguf served by --server-binary. Not with --backend.",
    ),
    click.option(
        "--server-binary",
        metavar="PATH",
        help="The llama.cpp server that serves a --model .gguf (default: llama-server on PATH).",
    ),
    click.option(
        "--mmproj",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="The vision projector to start --model with (for describe-images and rename-images).",
    ),
    click.option(
        "--start-timeout",
        type=BoundType(config.TIMEOUT),
        default=300,
        show_default=True,
        help="Seconds to wait for the --model server to load.",
    ),
    setting(
        "jobs",
        "Requests in flight (default: the server's slots; 4 for OpenAI-compatible servers).",
        default=None,
    ),
    json_option("Print JSON Lines records on stdout."),
    click.option("--dry-run", is_flag=True, help="Show what would happen; change no file."),
    click.option(
        "--write",
        type=click.Choice(write_choices()),
        default=None,
        help="Where answers go instead of the recipe's action: stdout (the same as print) prints"
        " them, so a rename recipe shows its answers and renames nothing; sidecar writes a file"
        " beside each input; xmp merges it into each photo's XMP sidecar, keeping what is there"
        " (photo recipes only; pipe undo puts the sidecar back).",
    ),
    click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False),
        help="Write pictures (and sidecars' pictures) into this folder instead of beside each"
        " input.",
    ),
    click.option(
        "--contact-sheet",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Also draw one picture of all the run's pictures with their names (.jpg or .png).",
    ),
    setting(
        "xmp_sidecar",
        "How XMP sidecars are named: photo.jpg.xmp (darktable, digiKam; the default) or"
        " photo.xmp (Lightroom, Capture One). Env PIPE_XMP_SIDECAR.",
        type=click.Choice(config.XMP_SIDECARS),
        metavar="NAME",
    ),
    click.option(
        "--lines",
        is_flag=True,
        help="Each line of stdin (or of the given files) is one item, e.g. a prompt or a question.",
    ),
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Override a recipe field, e.g. --set ask.max_tokens=200.",
    ),
    click.option(
        "--persona",
        metavar="CARD",
        help="Answer in this character's voice: a SillyTavern card (.png or .json) or its name"
        " (see pipe personas), e.g. librarian. The recipe's instructions stay.",
    ),
    setting(
        "user_persona",
        "Your own persona, {{user}} in the card: a SillyTavern persona's name or a text file."
        " Env PIPE_USER_PERSONA.",
        metavar="NAME",
    ),
    setting(
        "sillytavern",
        "SillyTavern's folder: --persona and --user-persona names are looked up in its"
        " data/*/characters and settings.json too. Env PIPE_SILLYTAVERN.",
        metavar="DIR",
        type=click.Path(file_okay=False),
    ),
    click.option(
        "--redo", is_flag=True, help="Do finished files again (the answer cache is bypassed too)."
    ),
    click.option(
        "-0", "--null", "null_separated", is_flag=True, help="Paths on stdin are NUL-separated."
    ),
    click.option(
        "--include",
        multiple=True,
        metavar="GLOB",
        help="Only files matching (replaces the recipe's inputs).",
    ),
    click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files matching."),
    click.option("--hidden", is_flag=True, help="Include hidden files and folders."),
    click.option(
        "-q", "--quiet", is_flag=True, help="No progress or summary on stderr; errors only."
    ),
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Say which server is used or started, and the summary, even when stderr is not a"
        " terminal (cron: without it, a run with nothing new prints nothing).",
    ),
    click.option(
        "--retries",
        type=BoundType(config.RETRIES),
        default=3,
        show_default=True,
        help="Further attempts per model call after a failure.",
    ),
    setting("timeout", "Seconds to wait for one model answer.", default=600, show_default=True),
    setting(
        "wait",
        "Seconds to wait for a server that is starting or went away.",
        default=30,
        show_default=True,
    ),
    db_option,
]


@click.command(cls=Command)
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@run_options
def run(recipe_name: str, paths: tuple[str, ...], **flags: Any) -> None:
    """Run RECIPE over files, folders and globs (or '-' for paths on stdin).

    With no PATH, the text piped on stdin is the one item.
    """
    from pipeline import api
    from pipeline.engine import Options

    f = RunFlags(**flags)
    managed = _managed_spec(f)
    parsed = given(click.get_current_context())
    if managed is not None and f.backend_urls and parsed["backends"].by != "env":
        raise UsageError("give --model FILE or --backend URL, not both")
    # The config file fills what no flag or environment variable gave.
    s = settings.resolve(parsed)
    persona = () if f.persona is None else (f"persona={json.dumps(f.persona)}",)
    recipe = s.load_recipe(recipe_name, (*f.overrides, *persona))
    _check_write(recipe, f.write)
    items, headers = _items(recipe, paths, f)
    say = Messages(f.quiet, f.verbose)
    summary = api.run(
        recipe,
        items,
        servers=api.Servers(
            [] if managed else list(s["backends"]),  # --model wins over PIPE_BACKEND, config
            s["sd_backend"],
            s["wait"],
            s["timeout"],
            s.api_key(),
            s["model_name"],
            managed,
            f.allow_mixed_models,
        ),
        output=api.Output(
            sys.stdout,
            f.as_json,
            headers,
            f.write,
            f.out_dir,
            f.contact_sheet,
            s["xmp_sidecar"] or config.XMP_SIDECARS[0],
        ),
        options=Options(
            jobs=s["jobs"] or 0,
            redo=f.redo,
            retries=f.retries,
            down_wait=s["wait"],
            progress=not f.quiet and sys.stderr.isatty(),
            on_error=say.item_error,
            on_note=say.item_note,
            on_info=say.info,
            dry_run=f.dry_run,
        ),
        db=s["db"],
        args=sys.argv[1:],
        say=say.info,
    )
    _summarize(summary, recipe, f.dry_run, say)
    sys.exit(summary.exit_code)


def _items(recipe: Recipe, paths: tuple[str, ...], f: RunFlags) -> tuple[Iterable[Item], bool]:
    """The items to run over, and whether each answer is headed by its name."""
    from pipeline import api

    if paths:
        items = api.items(
            recipe,
            paths,
            include=f.include,
            exclude=f.exclude,
            hidden=f.hidden,
            null_separated=f.null_separated,
            lines=f.lines,
        )
        single_file = len(paths) == 1 and paths[0] != "-" and os.path.isfile(paths[0])
        return items, f.lines or not single_file
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "give files or folders (or '-' to read paths from stdin), or pipe text in; "
            f"e.g. pipe run {recipe.name} notes/"
        )
    return api.stdin_items(recipe, sys.stdin.buffer, f.lines), f.lines


def _summarize(summary: Summary, recipe: Recipe, dry_run: bool, say: Messages) -> None:
    c = summary.counts
    tokens = c.prompt_tokens + c.completion_tokens
    # Nothing done and nothing failed (a cron re-run of a finished folder): no summary.
    # Files left to an overlapping run are news too: this run did not finish the folder.
    worth = bool(c.done or c.cached or c.failed or c.written or c.busy or summary.exit_code)
    say.summary(
        f"{c.words(dry_run)} · {tokens:,} tokens · {summary.seconds:.1f} s (run {summary.run_id})",
        worth,
    )
    if c.busy:
        say.summary(
            f"{c.busy} left to another run of {recipe.name} that is doing them now;"
            " run again when it ends to finish them here",
            worth,
        )
    if summary.backends:
        say.summary(f"answers by backend: {by_backend(summary.backends)}", worth)
    if dry_run and summary.exit_code in (0, 1):
        command = " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "--dry-run")
        say.summary(f"dry run: nothing was changed. To apply: pipe {command}", worth)
    if summary.stopped in ("unable", "usage"):
        say.error(f"error: {summary.error}")
    elif summary.stopped == "backend":
        say.error("the backend stopped answering; run the same command again to go on")
    elif summary.stopped:
        say.error(f"interrupted ({summary.stopped}); finished files are saved, run again to go on")


def _check_write(recipe: Recipe, write: str | None) -> None:
    """`--write` must suit the recipe's answers, as `then.action` must: refused before any
    model is asked."""
    from pipeline.recipe import action_problem

    problem = write and action_problem(recipe.steps, WRITE_ALIASES.get(write, write))
    if problem:
        raise UsageError(f"--write {write}: {problem}")


def _managed_spec(f: RunFlags) -> ManagedSpec | None:
    if f.model_file is None:
        if f.server_binary or f.mmproj:
            raise UsageError("--server-binary and --mmproj go with --model FILE")
        return None
    from pipeline.servers.managed import ManagedSpec

    return ManagedSpec.for_model(
        f.model_file,
        server_binary=f.server_binary,
        mmproj=f.mmproj,
        start_timeout=f.start_timeout,
    )
