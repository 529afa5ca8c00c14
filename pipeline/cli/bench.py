"""`pipe bench`: how fast this box runs its models, per backend (the seed's "biotics" and
"/sd you"), as a table, JSON or a chart, each result kept in the state database; and
`--history`, the kept figures over time. The work is `pipeline.bench`'s, imported when the
command runs, not when help is shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline import config, settings
from pipeline.backends.registry import url_forms
from pipeline.cli.options import BoundType, db_option, given, json_option, setting
from pipeline.cli.output import Messages, echo, say
from pipeline.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    from pipeline.bench.figures import Figures
    from pipeline.personas.persona import Persona
    from pipeline.store.database import Store

REPEAT = config.Bound(1, 100, whole=True)
SIZE = config.Bound(64, 1024, whole=True)
STEPS = config.Bound(1, 80, whole=True)  # what image servers accept (steps/drawing.py)
GPU_LAYERS = config.Bound(0, 10_000, whole=True)
HISTORY_LIMIT = 1000


def _size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value % 64:
        raise click.BadParameter(f"expected a multiple of 64, got {value}", ctx, param)
    return value


CHART_SIDE = config.Bound(200, 8000, whole=True)


def _chart_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    width, sep, height = value.lower().partition("x")
    if sep and width.isdigit() and height.isdigit():
        size = (int(width), int(height))
        if all(CHART_SIDE.accepts(side) for side in size):
            return size
    raise click.BadParameter(
        f"expected WIDTHxHEIGHT, each {CHART_SIDE.describe()}, e.g. 1200x700; got {value!r}",
        ctx,
        param,
    )


@click.command()
@setting(
    "backends",
    f"Bench this server: {url_forms()}. Repeat it for several (each is a row, a pool's"
    " members too). Default: the config file's, else every server on the default ports,"
    " else the embedded model. Env PIPE_BACKEND.",
    metavar="URL",
)
@setting(
    "sd_backend",
    "Also draw on this image server (/sd you). Env PIPE_SD_BACKEND.",
    metavar="URL",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Start this model as a server (a .llamafile, or a .gguf served by llama-server) and"
    " bench it.",
)
@click.option(
    "--server-binary",
    metavar="PATH",
    help="The llama.cpp server that serves a --model .gguf (default: llama-server on PATH).",
)
@click.option(
    "--gpu-layers",
    type=BoundType(GPU_LAYERS),
    default=None,
    metavar="N",
    help="Start --model with N layers on the GPU (-ngl N); the table shows it.",
)
@click.option(
    "--repeat",
    type=BoundType(REPEAT),
    default=3,
    show_default=True,
    help="Requests and pictures per backend; each figure is their median (after one"
    " uncounted warm-up request).",
)
@click.option(
    "--size",
    type=BoundType(SIZE),
    default=512,
    show_default=True,
    callback=_size,
    help="The portrait's side in pixels (64 to 1024, a multiple of 64).",
)
@click.option(
    "--steps",
    type=BoundType(STEPS),
    default=None,
    help="Sampling steps per portrait (default: the recipes' 20).",
)
@click.option(
    "--persona",
    default="librarian",
    show_default=True,
    metavar="CARD",
    help="The character that explains and draws itself: a card's name or file.",
)
@json_option("A JSON array of the figures on stdout instead of the table.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Also draw the figures as a bar chart (replaces only a chart pipe wrote).",
)
@click.option(
    "--chart-size",
    default="1200x700",
    show_default=True,
    callback=lambda ctx, param, value: _chart_size(ctx, param, value),
    metavar="WxH",
    help="The chart's size in pixels.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Save the portraits in DIR as new files (default: none is written).",
)
@click.option(
    "--history",
    is_flag=True,
    help="Show the kept figures over time instead (of the --backend servers only, if given).",
)
@setting("api_key_env", "As for pipe run.", metavar="NAME")
@setting("model_name", "As for pipe run.")
@setting("timeout", "Seconds to wait for one answer or picture.", default=600, show_default=True)
@setting("wait", "Seconds to wait for a server that is starting.", default=30, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr; errors only.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Progress on stderr even when it is not a terminal."
)
@db_option
def bench(**flags: Any) -> None:
    """Measure each backend: the librarian explains a paragraph on antibiotics in one
    sentence ("biotics": prompt tokens, tokens/s, first token, seconds) and draws its own
    portrait ("/sd you", where the server draws). Every result is kept in the state
    database. Exit 0 when every backend was measured, 1 when one failed, 3 when none
    answered.
    """
    s = settings.resolve(given(click.get_current_context()))
    messages = Messages(flags["quiet"], flags["verbose"])
    if flags["history"]:
        _history(s, flags)
        return
    figures, code = _measure(s, flags, messages)
    _show(figures, flags, s)
    sys.exit(code)


def _measure(
    s: settings.Settings, flags: dict[str, Any], messages: Messages
) -> tuple[list[Figures], int]:
    from pipeline.bench import targets
    from pipeline.bench.runner import Bench, Plan

    managed = _managed(flags, s)
    persona, portrait = load_persona(flags["persona"], s)
    plan = Plan(
        repeat=flags["repeat"],
        size=flags["size"],
        steps=flags["steps"] or Plan.steps,
        keep=Path(flags["keep"]) if flags["keep"] else None,
    )
    how = targets.Connection(s["wait"], s["timeout"], s.api_key(), s["model_name"])
    store = _open_store(s)
    try:
        if flags["chart"]:
            _check_chart(flags["chart"], store)  # before minutes of benching, as after
        chosen = targets.choose(
            [] if managed else list(s["backends"] or ()),
            s["sd_backend"],
            managed,
            how,
            messages.info,
        )
        run = Bench(persona, portrait, plan, say=messages.info, failed=messages.error)
        outcome = run.run(chosen, keep=store.bench.add)
        if flags["chart"] and outcome.figures:
            _chart(outcome.figures, flags["chart"], flags["chart_size"], store)
    finally:
        store.close()
    if not outcome.reached:
        if not outcome.failed:
            raise BackendUnavailable("no backend to bench")
        return outcome.figures, BackendUnavailable.exit_code
    return outcome.figures, 1 if outcome.failed else 0


def load_persona(name: str, s: settings.Settings) -> tuple[Persona, str]:
    """The persona by name or file, and the prompt of its portrait (the card's own, else
    one made from its name and description)."""
    from pipeline import personas

    folder = s["sillytavern"]
    persona = personas.load(name, s["user_persona"], Path(folder).expanduser() if folder else None)
    return persona, persona.portrait


def _managed(flags: dict[str, Any], s: settings.Settings) -> Any:
    if flags["model_file"] is None:
        if flags["gpu_layers"] is not None or flags["server_binary"]:
            raise UsageError("--gpu-layers and --server-binary go with --model FILE")
        return None
    if s.source("backends").startswith("flag"):
        raise UsageError("give --model FILE or --backend URL, not both")
    from pipeline.servers.managed import ManagedSpec

    layers = flags["gpu_layers"]
    return ManagedSpec.for_model(
        flags["model_file"],
        server_binary=flags["server_binary"],
        extra_args=() if layers is None else ("-ngl", str(layers)),
    )


def _open_store(s: settings.Settings) -> Store:
    from pipeline.cli.history import opened
    from pipeline.store.database import Store

    path = settings.database(s["db"])
    opened.append(path)
    return Store(path)


def _check_chart(target: str, store: Store) -> None:
    from pipeline.actions.base import check_replaceable
    from pipeline.results import ActionError

    try:
        check_replaceable(store.outputs, target)
    except ActionError as e:
        raise UsageError(f"--chart: {e}") from None


def _chart(figures: list[Figures], target: str, size: tuple[int, int], store: Store) -> None:
    """Written as every output of pipe's is: it replaces only a chart pipe wrote there."""
    from pipeline.actions.base import write_output
    from pipeline.bench.chart import png
    from pipeline.results import ActionError

    try:
        write_output(store.outputs, target, png(figures, size))
    except ActionError as e:
        raise UsageError(f"--chart: {e}") from None


def _show(figures: list[Figures], flags: dict[str, Any], s: settings.Settings) -> None:
    if flags["as_json"]:
        click.echo(json.dumps([f.to_json() for f in figures], ensure_ascii=False))
        return
    from pipeline.bench.table import render_table

    for line in render_table(figures).splitlines():
        echo(line)


def _history(s: settings.Settings, flags: dict[str, Any]) -> None:
    import os

    from pipeline.bench.table import render_history
    from pipeline.bench.targets import backend_name
    from pipeline.cli.history import opened
    from pipeline.store.database import Store

    path = settings.database(s["db"])
    if not os.path.exists(path):
        raise UsageError(f"no database at {path} yet: run 'pipe bench' first")
    opened.append(path)
    store = Store(path)
    try:
        urls = list(s["backends"] or ()) if s.source("backends").startswith("flag") else []
        names = [backend_name(url) for url in urls] or [None]
        figures = [f for name in names for f in store.bench.history(name, HISTORY_LIMIT)]
        if flags["chart"] and figures:
            _chart(figures, flags["chart"], store)
    finally:
        store.close()
    if flags["as_json"]:
        click.echo(json.dumps([f.to_json() for f in figures], ensure_ascii=False))
        return
    if not figures:
        say("no bench results kept yet" + (" for these backends" if urls else ""))
        return
    for line in render_history(figures).splitlines():
        echo(line)
