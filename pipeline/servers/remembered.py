"""What a server said about itself when pipe last used it, kept in the store so that a
later run knows it without asking the server (table `started_models`, named for its first
use).

A run's cache keys hold the model name the server reports, which may not be the file's
name. So the first run with a server asks it at once and remembers what it said; later runs
with the same choice of server know it from here and open the server only when an item
needs an answer: a finished folder under cron asks nothing and starts nothing, even with
the server down.

- A `--model FILE` server: as long as the file (and the projector and server binary that
  shape what it says) has the same size and mtime.
- A server chosen by URL (`--backend`, a pool, `--sd-backend`) or found on a default port:
  by that choice, kept as a digest (a URL's password never reaches the store).

    info = recall(store, spec)        # None: never started, or the file changed
    remember(store, spec, backend.info)
    info = recall_chosen(store, chosen("text", urls))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.backends import ServerInfo
from pipeline.server_text import redact
from pipeline.servers.managed import ManagedSpec
from pipeline.store.answer_cache import now_iso

if TYPE_CHECKING:
    from pipeline.store.database import Store

MAX_INFO_CHARS = 64 * 1024  # what a server says of itself is short; more is not ours
CHOSEN = "chosen by URL or port"  # the identity of a chosen server: its choice is the key


def identity(spec: ManagedSpec) -> str | None:
    """The files behind `spec` as they are now (path, size, mtime), and its extra arguments;
    None when one is missing (the start says so)."""
    try:
        binary = None
        if spec.server_binary is not None:
            found = shutil.which(spec.server_binary)
            if found is None:
                return None
            binary = _stat(Path(found))
        return json.dumps(
            {
                "model": _stat(spec.model),
                "mmproj": _stat(spec.mmproj) if spec.mmproj else None,
                "binary": binary,
                "args": list(spec.extra_args),
            },
            sort_keys=True,
        )
    except OSError:
        return None


def recall(store: Store, spec: ManagedSpec) -> ServerInfo | None:
    """What the server said when last started from these very files, else None."""
    now = identity(spec)
    return None if now is None else _recall(store, _key(spec), now)


def remember(store: Store, spec: ManagedSpec, info: ServerInfo) -> None:
    """Keep what the server started from `spec` said (its URL, a port of one run, is not)."""
    now = identity(spec)
    if now is not None:
        _remember(store, _key(spec), now, info)


def chosen(role: str, urls: list[str], model_name: str | None = None) -> str:
    """The store's key for a choice of server: `role` ("text", "draw") and the URLs given
    (none: the default ports) with the model asked for, as a digest."""
    said = json.dumps([role, sorted(set(urls)), model_name])
    return "chosen:" + hashlib.sha256(said.encode()).hexdigest()


def recall_chosen(store: Store | None, choice: str) -> ServerInfo | None:
    """What the server chosen as `choice` said when pipe last used it, else None (also
    without a store)."""
    return None if store is None else _recall(store, choice, CHOSEN)


def remember_chosen(store: Store, choice: str, info: ServerInfo) -> None:
    """Keep what the server chosen as `choice` said, its URL too (without a password)."""
    _remember(store, choice, CHOSEN, info, url=redact(info.url))


def _recall(store: Store, key: str, now: str) -> ServerInfo | None:
    try:
        row = store.conn.execute(
            "SELECT identity, info FROM started_models WHERE model = ?", (key,)
        ).fetchone()
    except sqlite3.Error:
        return None
    if row is None or row[0] != now or not isinstance(row[1], str):
        return None
    if len(row[1]) > MAX_INFO_CHARS:
        return None
    return _info_from_json(row[1])


def _remember(store: Store, key: str, now: str, info: ServerInfo, url: str = "") -> None:
    said = {k: v for k, v in asdict(info).items() if k != "url"}
    if url:
        said["url"] = url
    said["abilities"] = sorted(info.abilities)
    text = json.dumps(said, sort_keys=True)
    if len(text) > MAX_INFO_CHARS:
        return  # never recalled (a server naming itself at such length): not worth a row
    # Only a saving: a store that cannot keep it (disk full) means a probe next time too.
    with contextlib.suppress(sqlite3.Error), store.transaction() as c:
        c.execute(
            "INSERT OR REPLACE INTO started_models (model, identity, info, updated)"
            " VALUES (?, ?, ?, ?)",
            (key, now, text, now_iso()),
        )


def differs(remembered: ServerInfo, said: ServerInfo) -> bool:
    """Whether the server says anything else about itself than it did (its URL aside)."""
    return replace(remembered, url=said.url) != said


def _info_from_json(text: str) -> ServerInfo | None:
    try:
        said: Any = json.loads(text)
        known = {f.name: f.type for f in fields(ServerInfo)}
        if not isinstance(said, dict) or not set(said) <= set(known):
            return None
        if not isinstance(said.get("abilities", []), list):
            return None
        said["abilities"] = frozenset(str(a) for a in said.get("abilities", []))
        said.setdefault("url", "")
        info = ServerInfo(**said)
    except (ValueError, TypeError):
        return None
    ok = isinstance(info.model, str) and isinstance(info.kind, str) and info.model
    ok = ok and isinstance(info.url, str)
    ok = ok and isinstance(info.slots, int) and 1 <= info.slots <= 4096
    ok = ok and (info.n_ctx is None or (isinstance(info.n_ctx, int) and info.n_ctx > 0))
    return info if ok else None


def _key(spec: ManagedSpec) -> str:
    return os.path.abspath(spec.model)


def _stat(path: Path) -> list[Any]:
    st = path.stat()
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
