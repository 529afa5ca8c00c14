"""When no server is given: the server on a default port pipe used last time, else the
first that answers now, else the embedded model, started only when an item needs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.backends import Backend, ServerInfo
from pipeline.backends.lazy import LazyBackend
from pipeline.config import default_backends
from pipeline.errors import BackendUnavailable, UsageError
from pipeline.servers import embedded, remembered
from pipeline.servers.default_ports import on_default_ports
from pipeline.servers.embedded import EmbeddedServer
from pipeline.servers.known import chosen_server
from pipeline.servers.reach import HOW_TO_START, HOW_TO_START_VISION, connect_or_explain

if TYPE_CHECKING:
    from pipeline.store.database import Store

EMBEDDED = "embedded"  # --backend embedded: the embedded model, chosen by name


@contextmanager
def default_server(
    store: Store | None,
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    vision_for: str,
    api_key: str | None,
    model_name: str | None,
) -> Iterator[Backend]:
    """No server given. The one pipe last found on a default port, known from the store
    and looked for only when an item needs an answer; if it is gone then, the run says so
    (exit 3) rather than redo finished files with the embedded model under its other name.
    Never used one: the first that answers now (remembered), else the embedded model,
    started when an item needs it."""
    choice = remembered.chosen("text", [], model_name)
    known = remembered.recall_chosen(store, choice)
    if known is not None:

        def look_again() -> Backend:
            found = on_default_ports(timeout, api_key, model_name)
            if found is None:
                raise BackendUnavailable(gone(known))
            return found

        with chosen_server(store, choice, known, "", look_again) as backend:
            yield backend
        return
    found = on_default_ports(timeout, api_key, model_name)
    if found is not None:
        with chosen_server(store, choice, None, found.url, lambda: found) as backend:
            yield backend
        return
    with closing(lazy_embedded(wait, timeout, say, vision_for)) as embedded_model:
        yield embedded_model


def named_embedded(
    urls: list[str], wait: float, timeout: float, say: Callable[[str], None], vision_for: str
) -> LazyBackend:
    """`--backend embedded`: the embedded model, started when an item needs it."""
    if len(urls) > 1:
        raise UsageError("--backend embedded is the embedded model alone: it joins no pool")
    return lazy_embedded(wait, timeout, say, vision_for, named=True)


def gone(known: ServerInfo) -> str:
    """No server answers on the default ports, where pipe last used `known`."""
    where = " or ".join(u.removeprefix("http://") for u in default_backends())
    return (
        f"no model server answers at {where}; pipe last used {known.kind} at"
        f" {known.url.removeprefix('http://')} (model {known.model}): start it again, pass"
        " --backend URL, or --backend embedded for the embedded model"
    )


def lazy_embedded(
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    vision_for: str,
    *,
    named: bool = False,
) -> LazyBackend:
    """The embedded model, known by its file's name and started only when an item first
    needs an answer (never for a finished folder or cached answers); `named`: chosen with
    --backend embedded, not for want of a server."""
    where = " or ".join(u.removeprefix("http://") for u in default_backends())
    if vision_for:
        reason = "the embedded model reads only text"
        if not named:
            reason = f"no model server answers at {where} ({reason})"
        raise BackendUnavailable(
            f"{vision_for} needs a model that sees images, and {reason}; {HOW_TO_START_VISION}"
        )
    name = embedded.model_name() if embedded.available() else None
    if name is None:
        raise BackendUnavailable(f"no model server found at {where}; {HOW_TO_START}")
    info = ServerInfo(
        kind="embedded model",
        url=f"embedded:{name}",
        model=name,  # what its server reports: the file's name
        slots=1,
        n_ctx=embedded.N_CTX,
        abilities=frozenset({"text", "tokenize", "grammar"}),
    )

    def start(stack: ExitStack) -> Backend:
        server = EmbeddedServer()
        stack.callback(server.stop)
        say(
            f"no model server at {where}: starting the embedded model {server.model.stem}"
            " (small and weak; for real work start your own server and pass --backend URL)"
        )
        server.url = server.start()
        backend = connect_or_explain(server.url, wait, timeout)
        stack.callback(backend.close)
        backend.info = replace(backend.info, kind="embedded model")
        return backend

    return LazyBackend(info, start)
