"""pipe as a library: `run()` does what `pipe run` does (choose the servers, open the store
and the action, run the recipe over the items) and returns the summary; `items()` turns
paths, stdin and `--lines` into the items to run over. The CLI parses and prints, nothing
else.

    from pipeline import api, recipe
    r = recipe.load("summarize-text")
    summary = api.run(r, api.items(r, ["notes/"]))
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, TextIO

from pipeline import sources
from pipeline.actions import Action, ActionContext, action_class, open_action, restoring
from pipeline.backends import Backend
from pipeline.backends.lazy import LazyBackend
from pipeline.engine import Item, Options, Runner, Summary, file_items, stdin_item
from pipeline.engine import loop as engine_loop
from pipeline.engine.asking import persona_overflow
from pipeline.engine.items import Rewalkable, line_items
from pipeline.errors import UsageError
from pipeline.paths import default_db_path
from pipeline.recipe import Recipe
from pipeline.servers.connection import open_backend, open_image_backend
from pipeline.servers.managed import ManagedSpec
from pipeline.steps import TEXT_SERVER
from pipeline.steps.text import TextStep
from pipeline.store.database import Store


@dataclass
class Output:
    """Where and how results are shown and written."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    as_json: bool = False
    headers: bool = False  # `==> path <==` before each answer
    write: str | None = None  # an action other than the recipe's (`--write`)
    out_dir: str | None = None
    contact_sheet: str | None = None
    xmp_sidecar: str = "photo.jpg.xmp"  # or "photo.xmp" (Lightroom): config's xmp_sidecar


@dataclass
class Servers:
    backend_urls: list[str] = field(default_factory=list)  # none: default ports, embedded
    sd_url: str | None = None
    wait: float = 30.0
    timeout: float = 600.0
    api_key: str | None = None  # sent as a Bearer token, never stored or shown
    model_name: str | None = None  # which model, where a server has several (Ollama)
    managed: ManagedSpec | None = None  # a server pipe starts and stops (`--model FILE`)
    allow_mixed_models: bool = False  # several backend_urls may serve different models


def run(
    recipe: Recipe,
    items: Iterable[Item],
    *,
    servers: Servers | None = None,
    output: Output | None = None,
    options: Options | None = None,
    db: str | Path | None = None,
    args: list[str] | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> Summary:
    servers = servers or Servers()
    output = output or Output()
    options = options or Options()
    _check_out_dir(recipe, output)
    image_urls = [servers.sd_url] if servers.sd_url else []
    if not recipe.asks and not image_urls:
        image_urls = servers.backend_urls  # a recipe that only draws: --backend draws
    # A dry run draws nothing: a recipe that also asks needs only its text model.
    draws = recipe.draws and not (options.dry_run and recipe.asks)
    sees = "vision" in recipe.needs(TEXT_SERVER)
    # The store first: it knows what a `--model` server said last time (so it may never
    # need starting), and a database that cannot open is said before any model loads.
    store = Store(db or default_db_path())
    with (
        contextlib.closing(store),
        open_backend(
            servers.backend_urls if recipe.asks else [],
            wait=servers.wait,
            timeout=servers.timeout,
            say=say,
            needed=recipe.asks,
            api_key=servers.api_key,
            model_name=servers.model_name,
            managed=servers.managed,
            jobs=options.jobs,
            allow_mixed_models=servers.allow_mixed_models,
            vision_for=recipe.name if sees else "",
            store=store,
        ) as text,
        open_image_backend(
            recipe if draws else None,
            image_urls,
            text,
            wait=servers.wait,
            timeout=servers.timeout,
            say=say,
            store=store,
        ) as images,
    ):
        backend = text or images
        assert backend is not None
        if text is not None and not _lazy(text):
            _check_personas_fit(recipe, text)
        _say_servers(text, images, options.jobs, say)
        action = _open_action(recipe, store, output, backend.info.model, options.dry_run)
        _resolve_replacements(store, options)
        runner = Runner(recipe, backend, store, action, options, images=images)
        return runner.run(items, args or [])


def _check_out_dir(recipe: Recipe, output: Output) -> None:
    """`--out DIR` where nothing would go there is a mistake to say, not to ignore."""
    action = output.write or recipe.action
    if output.out_dir and not action_class(action).takes_out_dir:
        raise UsageError(
            f"--out is where pictures go, and {recipe.name} writes none (its answers go to"
            f" the {action} action); leave out --out"
        )


def _resolve_replacements(store: Store, options: Options) -> None:
    """Settle the files a killed run was replacing (the renames: the engine's start)."""
    for outcome in restoring.resolve(store):
        if options.on_info:
            options.on_info(f"journal: {outcome.path}: {outcome.reason}")


def _open_action(recipe: Recipe, store: Store, output: Output, model: str, dry_run: bool) -> Action:
    """Where the answers go: the recipe's `then.action`, or `--write`'s."""
    context = ActionContext(
        recipe,
        store,
        output.out,
        output.as_json,
        output.headers,
        model,
        dry_run,
        output.out_dir,
        output.contact_sheet,
        output.xmp_sidecar,
    )
    return open_action(output.write or recipe.action, context)


def _say_servers(
    text: Backend | None, images: Backend | None, jobs: int, say: Callable[[str], None]
) -> None:
    """`using llama.cpp at URL (model M, 4 in flight)`, and the same for the image server:
    now, or for a server known from last time, when an item first needs it."""
    for server, role in ((text, "using"), (images, "drawing with")):
        if server is None:
            continue

        def say_it(opened: Backend, role: str = role) -> None:
            info = opened.info
            model = info.image_model if role == "drawing with" else info.model
            in_flight = engine_loop.in_flight(jobs if role == "using" else 0, info.slots)
            model = model or "unknown"
            say(f"{role} {info.kind} at {info.url} (model {model}, {in_flight} in flight)")

        if not isinstance(server, LazyBackend):
            say_it(server)
        elif server.info.kind != "embedded model":  # which says so as it starts
            server.check_when_opened(say_it)


def _check_personas_fit(recipe: Recipe, backend: Backend) -> None:
    """A card far larger than the model's context: one line, exit 2, before any item."""
    for step in recipe.steps:
        if isinstance(step, TextStep):
            problem = persona_overflow(step, backend)
            if problem:
                raise UsageError(problem)


def _lazy(backend: Backend) -> bool:
    return isinstance(backend, LazyBackend) and backend.opened is None


def items(
    recipe: Recipe,
    paths: Iterable[str],
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
    null_separated: bool = False,
    lines: bool = False,
    stdin: TextIO | None = None,
) -> Iterator[Item]:
    """The items named by `paths` (files, folders, globs; "-" reads paths from `stdin`);
    with `lines`, each line of those files is an item instead. A path that names nothing
    is a UsageError here, before anything starts."""
    paths = list(paths)
    missing = sources.named_nothing(p for p in paths if p != "-")
    if missing is not None:
        what = "no file matches" if sources.GLOB_CHARS & set(missing) else "no such file or folder"
        raise UsageError(f"{what}: {missing}")
    filters = sources.Filters(patterns=include or recipe.inputs, exclude=exclude, hidden=hidden)
    paths = tuple(paths)
    args = _expand_dash(paths, null_separated, stdin or sys.stdin)
    if lines:
        return _lines_of_files(sources.expand(args, sources.Filters(hidden=hidden)))
    if "-" in paths:  # stdin is read once
        return file_items(sources.expand(args, filters))
    return Rewalkable(lambda: file_items(sources.expand(paths, filters)))


def stdin_items(recipe: Recipe, stream: BinaryIO, lines: bool = False) -> Iterator[Item]:
    """The text piped in: one item, or one per line."""
    if lines:
        return line_items(stream)
    data = stream.read()
    if not data:
        raise UsageError("stdin was empty: pipe text in, or give files or folders")
    return iter([stdin_item(data)])


def _lines_of_files(entries: Iterable[sources.Entry]) -> Iterator[Item]:
    for entry in entries:
        if entry.error:
            yield Item(entry)
            continue
        with open(entry.path, "rb") as f:
            yield from line_items(f, os.path.basename(entry.path))


def _expand_dash(paths: Iterable[str], null_separated: bool, stdin: TextIO) -> Iterator[str]:
    for path in paths:
        if path == "-":
            yield from sources.stdin_paths(stdin, null_separated)
        else:
            yield path
