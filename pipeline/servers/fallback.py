"""When no server is given and none answers on the default ports: the embedded model,
started only when an item needs it; where it cannot serve (a recipe that sees, or none
installed), the server pipe last found on a default port, looked for again only then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.backends import Backend, ServerInfo
from pipeline.backends.lazy import LazyBackend
from pipeline.config import default_backends
from pipeline.errors import BackendUnavailable
from pipeline.servers import embedded, remembered
from pipeline.servers.default_ports import on_default_ports
from pipeline.servers.embedded import EmbeddedServer
from pipeline.servers.known import chosen_server
from pipeline.servers.reach import HOW_TO_START, HOW_TO_START_VISION, connect_or_explain

if TYPE_CHECKING:
    from pipeline.store.database import Store


@contextmanager
def embedded_or_known(
    store: Store | None,
    wait: float,
    timeout: float,
    say: Callable[[str], None],
    vision_for: str,
    api_key: str | None,
    model_name: str | None,
) -> Iterator[Backend]:
    """Nothing answers on the default ports: the embedded model, started when an item
    needs it; where that cannot serve (a recipe that sees, or none installed), the server
    pipe last found on a default port, looked for again when an item needs it."""
    try:
        backend: Backend = lazy_embedded(wait, timeout, say, vision_for)
    except BackendUnavailable as e:
        none_here = str(e)
        choice = remembered.chosen("text", [], model_name)
        if store is None or remembered.recall_chosen(store, choice) is None:
            raise

        def look_again() -> Backend:
            found = on_default_ports(timeout, api_key, model_name)
            if found is None:
                raise BackendUnavailable(none_here)
            return found

        with chosen_server(store, choice, "", look_again) as backend:
            yield backend
        return
    try:
        yield backend
    finally:
        backend.close()


def lazy_embedded(
    wait: float, timeout: float, say: Callable[[str], None], vision_for: str
) -> LazyBackend:
    """The embedded model, known by its file's name and started only when an item first
    needs an answer (never for a finished folder or cached answers)."""
    where = " or ".join(u.removeprefix("http://") for u in default_backends())
    if vision_for:
        raise BackendUnavailable(
            f"{vision_for} needs a model that sees images, and no model server answers at"
            f" {where} (the embedded model reads only text); {HOW_TO_START_VISION}"
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
