"""The `pipe` command: thin click commands over the library. No logic of its own."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import sys
from typing import Any

import click
from click.core import ParameterSource

from pipeline import __version__, api, config, paths
from pipeline import recipe as recipes
from pipeline.actions import WRITE_ALIASES, Result, write_choices
from pipeline.answers import Picture
from pipeline.doctor import checks as doctor_checks
from pipeline.doctor import output as doctor_output
from pipeline.engine import Options
from pipeline.errors import PipeError, UsageError
from pipeline.paths import default_db_path
from pipeline.renaming import moves
from pipeline.server_text import redact
from pipeline.servers.managed import ManagedSpec
from pipeline.store import history
from pipeline.store.database import Counts, Store
from pipeline.store.errors import explain
from pipeline.terminal import Shown


def db_option(func: Any) -> Any:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False),
        envvar="PIPE_DB",
        help="State database (default: in the user data folder; env PIPE_DB).",
    )(func)


def _help_footer(formatter: click.HelpFormatter) -> None:
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


class _Group(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        _help_footer(formatter)


class _Command(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        _help_footer(formatter)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def cli() -> None:
    """Map local generative-AI models over folders of files, resumably.

    \b
    pipe run summarize-text notes/
    find notes -name '*.md' | pipe run summarize-text -
    cat report.txt | pipe run summarize-text
    """


@cli.command(cls=_Command)
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--backend",
    "backend_urls",
    multiple=True,
    envvar="PIPE_BACKEND",
    metavar="URL",
    help="A server: http://HOST:PORT (llama.cpp, llamafile, koboldcpp; detected),"
    " openai:URL (OpenAI-compatible: vLLM, Ollama, LM Studio), or cli:FILE.llamafile (run"
    " once per file, no server). Repeat it for a pool that shares the work. Env PIPE_BACKEND"
    " (several separated by spaces).",
)
@click.option(
    "--api-key-env",
    metavar="NAME",
    help="Send the API key in environment variable NAME as a Bearer token (OpenAI-compatible"
    " servers); the key itself is never stored or shown.",
)
@click.option(
    "--model-name",
    help="The model to use where a server has several (Ollama, LM Studio, vLLM).",
)
@click.option(
    "--allow-mixed-models",
    is_flag=True,
    help="Several --backend servers may serve different models (answers then name them all).",
)
@click.option(
    "--sd-backend",
    "sd_url",
    envvar="PIPE_SD_BACKEND",
    help="Image server URL (koboldcpp --sdmodel, AUTOMATIC1111 --api) for recipes that draw;"
    " default: the --backend server if it draws, else ports 5001 and 7860. Env PIPE_SD_BACKEND.",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Start this model as a server for the run and stop it after: a .llamafile, or a"
    " .gguf served by --server-binary. Not with --backend.",
)
@click.option(
    "--server-binary",
    metavar="PATH",
    help="The llama.cpp server that serves a --model .gguf (default: llama-server on PATH).",
)
@click.option(
    "--mmproj",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The vision projector to start --model with (for describe-images and rename-images).",
)
@click.option(
    "--start-timeout",
    type=config.TIMEOUT.param(),
    default=300,
    show_default=True,
    help="Seconds to wait for the --model server to load.",
)
@click.option(
    "-j",
    "--jobs",
    type=config.JOBS.param(),
    default=None,
    help="Requests in flight (default: the server's slots; 4 for OpenAI-compatible servers).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines records on stdout.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change no file.")
@click.option(
    "--write",
    type=click.Choice(write_choices()),
    default=None,
    help="Where answers go instead of the recipe's action: stdout (the same as print) prints"
    " them, so a rename recipe shows its answers and renames nothing; sidecar writes a file"
    " beside each input; xmp writes PHOTO.xmp (photo recipes only).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Write pictures (and sidecars' pictures) into this folder instead of beside each input.",
)
@click.option(
    "--contact-sheet",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also draw one picture of all the run's pictures with their names (.jpg or .png).",
)
@click.option(
    "--lines",
    is_flag=True,
    help="Each line of stdin (or of the given files) is one item, e.g. a prompt or a question.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Override a recipe field, e.g. --set ask.max_tokens=200.",
)
@click.option(
    "--redo", is_flag=True, help="Do finished files again (the answer cache is bypassed too)."
)
@click.option(
    "-0", "--null", "null_separated", is_flag=True, help="Paths on stdin are NUL-separated."
)
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Only files matching (replaces the recipe's inputs).",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files matching.")
@click.option("--hidden", is_flag=True, help="Include hidden files and folders.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr; errors only.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Say which server is used or started, and the summary, even when stderr is not a"
    " terminal (cron: without it, a run with nothing new prints nothing).",
)
@click.option(
    "--retries",
    type=config.RETRIES.param(),
    default=3,
    show_default=True,
    help="Further attempts per model call after a failure.",
)
@click.option(
    "--timeout",
    type=config.TIMEOUT.param(),
    default=600,
    show_default=True,
    help="Seconds to wait for one model answer.",
)
@click.option(
    "--wait",
    type=config.WAIT.param(),
    default=30,
    show_default=True,
    help="Seconds to wait for a server that is starting or went away.",
)
@db_option
def run(
    recipe_name: str,
    paths: tuple[str, ...],
    backend_urls: tuple[str, ...],
    api_key_env: str | None,
    model_name: str | None,
    allow_mixed_models: bool,
    sd_url: str | None,
    model_file: str | None,
    server_binary: str | None,
    mmproj: str | None,
    start_timeout: float,
    jobs: int | None,
    as_json: bool,
    dry_run: bool,
    write: str | None,
    out_dir: str | None,
    contact_sheet: str | None,
    lines: bool,
    overrides: tuple[str, ...],
    redo: bool,
    null_separated: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    hidden: bool,
    quiet: bool,
    verbose: bool,
    retries: int,
    timeout: float,
    wait: float,
    db: str | None,
) -> None:
    """Run RECIPE over files, folders and globs (or '-' for paths on stdin).

    With no PATH, the text piped on stdin is the one item.
    """
    ctx = click.get_current_context()
    managed = _managed_spec(model_file, server_binary, mmproj, start_timeout)
    if managed is not None:
        source = ctx.get_parameter_source("backend_urls")
        if backend_urls and source is not ParameterSource.ENVIRONMENT:
            raise UsageError("give --model FILE or --backend URL, not both")
    # The config file fills what no flag or environment variable gave.
    file = config.load()
    settings = config.resolve(
        ctx,
        file,
        {
            "backends": backend_urls,
            "sd_backend": sd_url,
            "jobs": jobs,
            "db": db,
            "api_key_env": api_key_env,
            "model_name": model_name,
            "timeout": timeout,
            "wait": wait,
        },
        {},
    )
    backend_urls = tuple(settings["backends"].value)
    if managed is not None:
        backend_urls = ()  # --model wins over PIPE_BACKEND and the config file
    sd_url = settings["sd_backend"].value
    jobs = settings["jobs"].value
    db = settings["db"].value
    api_key_env = settings["api_key_env"].value
    model_name = settings["model_name"].value
    timeout = settings["timeout"].value
    wait = settings["wait"].value
    # Several backends pass through as several --backend flags would.
    recipe = recipes.load(recipe_name, [*file.recipe_overrides(recipe_name), *overrides])
    _check_write(recipe, write)
    if paths:
        items = api.items(
            recipe,
            paths,
            include=include,
            exclude=exclude,
            hidden=hidden,
            null_separated=null_separated,
            lines=lines,
        )
        single_file = len(paths) == 1 and paths[0] != "-" and os.path.isfile(paths[0])
        headers = lines or not single_file
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "give files or folders (or '-' to read paths from stdin), or pipe text in; "
                f"e.g. pipe run {recipe.name} notes/"
            )
        items, headers = api.stdin_items(recipe, sys.stdin.buffer, lines), lines
    say = _Messages(quiet, verbose)
    summary = api.run(
        recipe,
        items,
        servers=api.Servers(
            list(backend_urls),
            sd_url,
            wait,
            timeout,
            _api_key(api_key_env),
            model_name,
            managed,
            allow_mixed_models,
        ),
        output=api.Output(sys.stdout, as_json, headers, write, out_dir, contact_sheet),
        options=Options(
            jobs=jobs or 0,
            redo=redo,
            retries=retries,
            down_wait=wait,
            progress=not quiet and sys.stderr.isatty(),
            on_error=say.item_error,
            on_note=say.item_note,
            on_info=say.info,
            dry_run=dry_run,
        ),
        db=db,
        args=sys.argv[1:],
        say=say.info,
    )
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
        say.summary(f"answers by backend: {_by_backend(summary.backends)}", worth)
    if dry_run and summary.exit_code in (0, 1):
        command = " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "--dry-run")
        say.summary(f"dry run: nothing was changed. To apply: pipe {command}", worth)
    if summary.stopped == "unable":
        say.error(f"error: {summary.error}")
    elif summary.stopped == "backend":
        say.error("the backend stopped answering; run the same command again to go on")
    elif summary.stopped:
        say.error(f"interrupted ({summary.stopped}); finished files are saved, run again to go on")
    sys.exit(summary.exit_code)


def _check_write(recipe: recipes.Recipe, write: str | None) -> None:
    """`--write` must suit the recipe's answers, as `then.action` must: refused before any
    model is asked."""
    problem = write and recipes.action_problem(recipe.steps, WRITE_ALIASES.get(write, write))
    if problem:
        raise UsageError(f"--write {write}: {problem}")


def _by_backend(answered: dict[str, int]) -> str:
    """`gpu1:8080 12, gpu2:8080 9`: busiest first."""
    ranked = sorted(answered.items(), key=lambda pair: -pair[1])
    return ", ".join(f"{url.removeprefix('http://')} {n}" for url, n in ranked)


def _api_key(name: str | None) -> str | None:
    if not name:
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise UsageError(f"--api-key-env {name}: the environment variable {name} is not set")
    return key


def _managed_spec(
    model: str | None, server_binary: str | None, mmproj: str | None, start_timeout: float
) -> ManagedSpec | None:
    if model is None:
        if server_binary or mmproj:
            raise UsageError("--server-binary and --mmproj go with --model FILE")
        return None
    return ManagedSpec.for_model(
        model, server_binary=server_binary, mmproj=mmproj, start_timeout=start_timeout
    )


class _Messages:
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
            _say(message)

    def summary(self, message: str, worth: bool) -> None:
        """The run's summary: when it has news (`worth`), or on a terminal."""
        if self._chatty() or (not self.quiet and worth):
            _say(message)

    def error(self, message: str) -> None:
        _say(message)

    def item_error(self, result: Result) -> None:
        self.error(f"{result.path}: {result.error}")

    def item_note(self, result: Result) -> None:
        self.info(f"{result.path}: skipped: {'; '.join(result.notes)}")


@cli.command()
@click.argument("recipe_name", metavar="[RECIPE]", required=False)
@click.option(
    "--backend",
    "backend_urls",
    multiple=True,
    envvar="PIPE_BACKEND",
    help="Check this server (may repeat; default: the config file's, else the default ports).",
)
@click.option(
    "--sd-backend", "sd_url", envvar="PIPE_SD_BACKEND", help="Check this image server too."
)
@click.option("--api-key-env", metavar="NAME", help="As for pipe run.")
@click.option("--model-name", help="As for pipe run.")
@click.option(
    "--timeout",
    type=config.TIMEOUT.param(),
    default=60,
    show_default=True,
    help="Seconds to wait for the tiny test request.",
)
@click.option(
    "--wait",
    type=config.WAIT.param(),
    default=0,
    show_default=True,
    help="Seconds to wait for a server that is still loading.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per backend.")
@db_option
def doctor(
    recipe_name: str | None,
    backend_urls: tuple[str, ...],
    sd_url: str | None,
    api_key_env: str | None,
    model_name: str | None,
    timeout: float,
    wait: float,
    as_json: bool,
    db: str | None,
) -> None:
    """Check every configured, given or default backend: does it answer, which API, model,
    slots, vision, images, grammar, and one tiny request's time; with RECIPE, whether any of
    them can run it. Exit 0 when one can (without RECIPE: when one answers), else 3.
    """
    ctx = click.get_current_context()
    file = config.load()
    settings = config.resolve(
        ctx,
        file,
        {
            "backends": backend_urls,
            "sd_backend": sd_url,
            "jobs": None,
            "db": db,
            "api_key_env": api_key_env,
            "model_name": model_name,
            "timeout": timeout,
            "wait": wait,
        },
        {
            "backends": "default: the default ports, then the embedded model",
            "sd_backend": "default: the text server if it draws, else the default image ports",
            "jobs": "default: each server's slots",
            "db": "default",
            "api_key_env": "default: none",
            "model_name": "default: the server's model",
        },
    )
    recipe = None
    if recipe_name:
        recipe = recipes.load(recipe_name, file.recipe_overrides(recipe_name))
    problems: list[str] = []
    key_env = settings["api_key_env"].value
    api_key = os.environ.get(key_env, "").strip() or None if key_env else None
    if key_env and api_key is None:
        problems.append(f"api_key_env {key_env}: the environment variable {key_env} is not set")
    urls = settings["backends"]
    if urls.value:
        backends = [(u, urls.source) for u in urls.value]
    else:
        backends = [(u, doctor_checks.DEFAULT_ORIGIN) for u in config.default_backends()]
    sd = settings["sd_backend"]
    report = doctor_checks.diagnose(
        backends,
        (sd.value, sd.source) if sd.value else None,
        list(config.default_image_backends()),
        recipe,
        doctor_checks.Probe(
            wait=settings["wait"].value,
            timeout=settings["timeout"].value,
            api_key=api_key,
            model_name=settings["model_name"].value,
        ),
    )
    report.advice[:0] = problems
    # What doctor prints holds URLs as given and servers' replies: no password or key shows.
    if as_json:
        for check in report.checks:
            click.echo(redact(json.dumps(check.to_json(), ensure_ascii=False)))
        sys.exit(0 if report.ok else 3)
    for line in doctor_output.lines(report, settings, file, recipe_name):
        _echo(redact(line))
    sys.exit(0 if report.ok else 3)


@cli.command(name="recipes", cls=_Command)
def list_recipes() -> None:
    """List built-in and user recipes, and where each comes from."""
    rows = recipes.available()
    width = max((len(name) for name, *_ in rows), default=0)
    for name, origin, path, description in rows:
        _echo(f"{name:<{width}}  {origin:<8}  {description}  ({path})")


@cli.command()
@click.option(
    "-n",
    "--limit",
    type=config.RUNS_LIMIT.param(),
    default=20,
    show_default=True,
    help="How many runs.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines.")
@db_option
def runs(limit: int, as_json: bool, db: str | None) -> None:
    """Past runs, newest first: id, recipe, start, counts (as the run's summary said them)
    and exit status; dry runs are marked."""
    store = _open_existing(db)
    for row in store.runs(limit):
        row["dry_run"] = bool(row["dry_run"])
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
        _echo(
            f"{row['id']:>5}  {row['recipe']:<18} {row['started'][:19].replace('T', ' ')}  "
            f"{Counts.of_run(row).words(row['dry_run'])}  {status}"
        )
        if row.get("backends"):
            _echo(f"       answers by backend: {_by_backend(json.loads(row['backends']))}")


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines.")
@db_option
def show(path: str, as_json: bool, db: str | None) -> None:
    """One file's history: runs, answers, errors, timings, and its renames (under either
    name)."""
    store = _open_existing(db)
    rows = history.item_history(store, path)
    if not rows:
        raise UsageError(f"no history for {path} in {store.path}")
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        when = f"run {row['run_id']}  {row['started'][:19].replace('T', ' ')}"
        if row["event"] != "item":
            _echo(f"{when}  {row['event']}  {row['path']} -> {row['new_path']}")
            continue
        took = f"{row['duration_ms'] / 1000:.1f} s" if row["duration_ms"] is not None else "-"
        tokens = (row["prompt_tokens"] or 0) + (row["completion_tokens"] or 0)
        _echo(
            f"{when}  {row['recipe']}  {row['status']}  {took}  {tokens} tokens"
            f"  model {row['model'] or '-'}"
        )
        meta = json.loads(row["meta"]) if row["meta"] else {}
        answer: list[tuple[str, str]] = [("answer", row["answer"])]
        if row.get("kind") == "picture" and row["answer"]:
            picture = Picture.from_json(row["answer"])
            answer = [
                (
                    "picture",
                    f"{picture.width}x{picture.height}, seed {picture.seed},"
                    f" sha256 {picture.sha256}",
                ),
                ("drawn from", picture.infotext),
            ]
        for label, value in (
            ("note", row["note"]),
            ("error", row["error"]),
            *meta.items(),
            *answer,
        ):
            if value:
                _echo(f"    {label}: {str(value).strip()}".replace("\n", "\n    "), text=True)


@cli.command()
@click.argument("run_id", type=config.RUN_ID.param(), required=False)
@db_option
def undo(run_id: int | None, db: str | None) -> None:
    """Put back the names a rename run changed (default: the last one), newest first.

    A file that changed since, or whose old name is taken now, is left alone and reported.
    """
    store = _open_existing(db)
    journal = store.journal
    if run_id is not None and not journal.run_exists(run_id):
        raise UsageError(f"no run {run_id}")
    for outcome in moves.reconcile(store):
        _say(f"journal: {outcome.old} -> {outcome.new}: {outcome.reason}")
    run_id = run_id or journal.last_run()
    if run_id is None:
        undone = journal.last_undone_run()
        _say(
            f"nothing to undo: run {undone} is already undone"
            if undone
            else "nothing to undo: no rename run has applied renames"
        )
        return
    outcomes = moves.undo(store, run_id)
    if not outcomes:
        _say(
            f"nothing to undo: run {run_id} is already undone"
            if journal.has_undone(run_id)
            else f"nothing to undo in run {run_id}"
        )
        return
    refused = 0
    for outcome in outcomes:
        if outcome.state == "undone":
            _echo(f"{outcome.old} -> {outcome.new}")
        else:
            refused += 1
            _say(f"{outcome.old}: not undone: {outcome.reason}")
    undone = len(outcomes) - refused
    _say(f"run {run_id}: {undone} renames undone, {refused} refused")
    sys.exit(1 if refused else 0)


def _say(message: str) -> None:
    """One line for people on stderr (never with a URL's password or an API key in it)."""
    click.echo(f"pipe: {Shown(sys.stderr).name(redact(message))}", err=True)


def _echo(line: str, text: bool = False) -> None:
    """Data on stdout: a name-like line, or (text=True) an answer that keeps its breaks."""
    shown = Shown(sys.stdout)
    click.echo(shown.text(line) if text else shown.name(line))


_opened: list[str] = []  # the database the command opened, for a read failing later


def _open_existing(db: str | None) -> Store:
    path = db or config.load().values.get("db") or str(default_db_path())
    if not os.path.exists(path):
        raise UsageError(f"no database at {path} yet: run 'pipe run RECIPE PATH' first")
    _opened.append(path)
    return Store(path)


def main() -> None:
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
        _say(f"error: {e.format_message()} (see '{command} --help')")
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PipeError as e:
        _say(f"error: {e}")
        sys.exit(e.exit_code)
    except sqlite3.Error as e:
        # A damaged page found by a query (`pipe show`): one line, not a traceback.
        error = explain(e, _opened[-1] if _opened else None)
        _say(f"error: {error}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("pipe: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `pipe run … | head`: the reader left; that is not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
