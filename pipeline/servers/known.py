"""Servers pipe knows from last time: the run is keyed by what the server said when pipe
last used it (`remembered`), and the server is opened (asked, or started) only when an item
first needs an answer. A finished folder under cron asks nothing and starts nothing, even
with the server down.

The first run with a choice of server opens it at once, as the cache keys need its model
name, and remembers what it said; a later run whose server now names another model stops
at its first answer (exit 3) and remembers the new name, so the run after it keys by that.

    choice = remembered.chosen("text", urls)
    known = remembered.recall_chosen(store, choice)
    with chosen_server(store, choice, known, url, open_now) as backend:
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.backends import Backend, ServerInfo
from pipeline.backends.lazy import LazyBackend, Opener
from pipeline.errors import BackendUnavailable
from pipeline.servers import remembered

if TYPE_CHECKING:
    from pipeline.store.database import Store


@contextmanager
def known_server(
    known: ServerInfo | None,
    open_now: Opener,
    keep: Callable[[ServerInfo], None],
    *,
    what: str,
    name_field: str = "model",
) -> Iterator[Backend]:
    """The server `open_now` opens (pushing what undoes it onto the stack it is given):
    with nothing `known`, opened now and what it says given to `keep`; else a LazyBackend
    known as `known` until an item needs it, whose model (`name_field`: "image_model" for
    a server that draws) must then still be the one the run keyed by. News it says then
    goes to `keep` at the end, in the thread that opened this (the one that writes the
    store)."""
    if known is None:
        with ExitStack() as stack:
            backend = open_now(stack)
            keep(backend.info)
            yield backend
        return
    said: list[ServerInfo] = []

    def open_later(stack: ExitStack) -> Backend:
        backend = open_now(stack)  # a UsageError (a pool's members now differ) is exit 3
        if remembered.differs(known, backend.info):
            said.append(backend.info)
        was, now = getattr(known, name_field), getattr(backend.info, name_field)
        if now != was:
            raise BackendUnavailable(
                f"{what} now says its model is {now!r}, not {was!r} as when pipe last used"
                " it, and this run chose its cache keys by the old name; pipe remembers the"
                " new one: run the same command again"
            )
        return backend

    lazy = LazyBackend(known, open_later)
    try:
        yield lazy
    finally:
        lazy.close()
        if said:
            keep(said[0])


@contextmanager
def chosen_server(
    store: Store | None,
    choice: str,
    known: ServerInfo | None,
    url: str,
    open_now: Callable[[], Backend],
    *,
    name_field: str = "model",
) -> Iterator[Backend]:
    """The server chosen as `choice` (`remembered.chosen`): with nothing `known` (what
    `remembered.recall_chosen` gave), opened now and remembered; else known by that and
    opened on first need. `url` is how the run names it meanwhile (`pipe runs`, the
    messages); "": where it was last time."""
    if known is not None:
        known = replace(known, url=url or known.url)

    def opened(stack: ExitStack) -> Backend:
        backend = open_now()
        stack.callback(backend.close)
        return backend

    def keep(info: ServerInfo) -> None:
        if store is not None:
            remembered.remember_chosen(store, choice, info)

    what = known.url if known is not None else url
    with known_server(known, opened, keep, what=what, name_field=name_field) as backend:
        yield backend
