"""The database's schema, as the migrations that build it: each runs once per database, in
order, recorded in `_migrations` (migrate, when the store finds the schema behind). Append
only."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": int,
            "recipe": str,
            "recipe_origin": str,
            "args": str,
            "backend": str,
            "model": str,
            "started": str,
            "ended": str,
            "status": str,
            "exit_code": int,
            "done": int,
            "cached": int,
            "skipped": int,
            "failed": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "pid": int,
            "host": str,
            "heartbeat": float,
        },
        pk="id",
    )
    db["items"].create(
        {
            "id": int,
            "recipe": str,
            "path": str,
            "size": int,
            "mtime_ns": int,
            "hash": str,
            "ask_key": str,
            "fingerprint": str,
            "status": str,
            "reason": str,
            "attempts": int,
            "run_id": int,
            "updated": str,
        },
        pk="id",
    )
    db["items"].create_index(["recipe", "path"], unique=True)
    db["history"].create(
        {
            "id": int,
            "run_id": int,
            "recipe": str,
            "path": str,
            "status": str,
            "fingerprint": str,
            "error": str,
            "note": str,
            "started": str,
            "duration_ms": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "attempts": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["history"].create_index(["path"])
    db["cache"].create(
        {
            "fingerprint": str,
            "step": str,
            "answer": str,
            "model": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "duration_ms": int,
            "created": str,
        },
        pk="fingerprint",
    )
    db["outputs"].create({"path": str, "digest": str, "written": str}, pk="path")


def _m002_renames(db: sqlite_utils.Database) -> None:
    db["renames"].create(
        {
            "id": int,
            "run_id": int,
            "grp": int,
            "companion": int,
            "old_path": str,
            "new_path": str,
            "dev": int,
            "ino": int,
            "size": int,
            "mtime_ns": int,
            "state": str,  # planned | applied | failed | abandoned | undone
            "reason": str,
            "planned": str,
            "updated": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["renames"].create_index(["run_id", "state"])
    db["renames"].create_index(["state"])  # every start looks for 'planned' rows to reconcile
    db["renames"].create_index(["new_path"])


def _m003_history_meta(db: sqlite_utils.Database) -> None:
    # What an item's answer was made from, as JSON: e.g. which EXIF or XMP field gave a date.
    db["history"].add_column("meta", str)
    # `pipe show` follows a file across renames in both directions.
    db["renames"].create_index(["old_path"])


def _m004_pictures(db: sqlite_utils.Database) -> None:
    # A step may answer with a picture: the cache row holds its record as JSON (size, seed,
    # sha256, how it was drawn) and the PNG lives once per sha256 in `pictures`.
    db["cache"].add_column("kind", str, not_null_default="text")
    db["pictures"].create({"sha256": str, "png": bytes, "created": str}, pk="sha256")


def _m005_run_backends(db: sqlite_utils.Database) -> None:
    # A run over a pool of servers: how many model calls each answered, as JSON {url: n}.
    db["runs"].add_column("backends", str)


def _m006_output_size(db: sqlite_utils.Database) -> None:
    # How many bytes pipe wrote to each output: a file of another size in its place is not
    # pipe's any more, known without reading it (the digest settles files of the same size).
    db["outputs"].add_column("size", int)


def _m007_run_written_dry_run(db: sqlite_utils.Database) -> None:
    # How many files a run wrote (sidecars, XMP, pictures, sheet pages), and whether it
    # was a dry run (older runs: told by their arguments).
    db["runs"].add_column("written", int, not_null_default=0)
    db["runs"].add_column("dry_run", int, not_null_default=0)
    db.execute("UPDATE runs SET dry_run = 1 WHERE args LIKE '%\"--dry-run\"%'")


def _m008_claims(db: sqlite_utils.Database) -> None:
    # A run's hold on a file it is working on, per recipe and its settings (ask_key): runs
    # of differently set recipes over the same files never block each other.
    db["claims"].create(
        {"recipe": str, "path": str, "ask_key": str, "run_id": int, "claimed": str},
        pk=("recipe", "path", "ask_key"),
    )
    db["claims"].create_index(["run_id"])


def _m009_started_models(db: sqlite_utils.Database) -> None:
    # What the server of a `--model FILE` said when pipe last started it (its model name keys
    # the cache), for that file as it was (`identity`: size, mtime, projector, binary): a
    # later run over finished files starts no server.
    db["started_models"].create(
        {"model": str, "identity": str, "info": str, "updated": str}, pk="model"
    )


def _m010_bench(db: sqlite_utils.Database) -> None:
    # What `pipe bench` measured, one row per test per backend (bench/figures.py's Figures),
    # kept so `pipe bench --history` shows how a box changed; `settings` is JSON.
    db["bench"].create(
        {
            "id": int,
            "at": str,
            "backend": str,
            "kind": str,
            "model": str,
            "test": str,
            "seconds": float,
            "context_size": int,
            "gpu_layers": int,
            "runs": int,
            "prompt_tokens": int,
            "prompt_per_second": float,
            "first_token_seconds": float,
            "generated_tokens": int,
            "generated_per_second": float,
            "overhead_ms": float,
            "width": int,
            "height": int,
            "steps": int,
            "settings": str,
        },
        pk="id",
    )
    db["bench"].create_index(["backend", "at"])


def _m011_replaced(db: sqlite_utils.Database) -> None:
    # Files pipe replaced (a merged sidecar, a photo with its metadata written in): the old
    # bytes kept once per sha256 under `backup`, journaled as 'planned' before the file is
    # replaced, so a killed run is resolved from the disk and `pipe undo` restores them.
    # `old_sha` NULL: there was no file (pipe made it). `fields`: what pipe wrote, as JSON
    # (a re-run replaces pipe's own keywords). `pruned`: when `pipe prune` freed the backup.
    db["replaced"].create(
        {
            "id": int,
            "run_id": int,
            "path": str,
            "kind": str,
            "recipe": str,
            "old_sha": str,
            "old_size": int,
            "backup": str,
            "new_sha": str,
            "new_size": int,
            "temp": str,
            "fields": str,
            "state": str,  # planned | applied | abandoned | failed | undone
            "reason": str,
            "planned": str,
            "updated": str,
            "pruned": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["replaced"].create_index(["run_id", "state"])
    db["replaced"].create_index(["state"])  # every start looks for 'planned' rows
    db["replaced"].create_index(["path", "state"])
    db["replaced"].create_index(["old_sha"])


def _m012_search(db: sqlite_utils.Database) -> None:
    # `pipe search`: full text over each item's text answer (store/search.py). One document
    # per item (rowid = items.id, stable under VACUUM), read from the answer cache through a
    # view: external content, so no answer is stored twice. The tokenizer folds case and
    # diacritics ("cafe" finds "café") and stems English ("dogs on beaches" finds "a dog on
    # the beach"); stems are what both sides compare, so other languages are still found
    # word for word. The item's recipe (as one token: its name in hex) and path are indexed
    # beside the answer, so that --recipe and --under narrow the search inside the index
    # (searches are held to the answer column).
    for statement in SEARCH_SCHEMA:
        db.execute(statement)
    # Index what is there already: FTS5 reads the view in one pass and flushes its terms
    # to disk as it goes (bounded memory, whatever the number of answers).
    db.execute("INSERT INTO search_index (search_index) VALUES ('rebuild')")


# The triggers keep the index in step, whichever side changes and however (INSERT OR REPLACE
# fires the delete triggers: the store sets recursive_triggers). An item whose document
# changes is queued in `search_pending`, and the store adds the queued documents in batches
# (store/search.py, flush): FTS5 writes a segment per commit, ~0.1 ms, and pipe commits
# once per item. A document already in the index is taken out at once, while its old
# values are known (an external-content index must be told the exact values it indexed):
# the answer from its cache row before the cache changes (the cache triggers), or as it
# is when the item changes (the item triggers). A queued item has nothing in the index.
_NOT_QUEUED = "NOT EXISTS (SELECT 1 FROM search_pending WHERE item = {id})"
_FORGET_ITEM = (
    "INSERT INTO search_index (search_index, rowid, answer, recipe, place)"
    " SELECT 'delete', {item}.id, answer, lower(hex({item}.recipe)), {item}.path FROM cache"
    " WHERE fingerprint = {item}.fingerprint AND kind = 'text' AND "
    + _NOT_QUEUED.format(id="{item}.id")
)
# Not INSERT OR IGNORE: the outer statement's conflict policy would replace the IGNORE.
_QUEUE_ITEM = (
    "INSERT INTO search_pending (item) SELECT {item}.id"
    " WHERE {item}.fingerprint IS NOT NULL AND " + _NOT_QUEUED.format(id="{item}.id")
)
_FORGET_ANSWER = (
    "INSERT INTO search_index (search_index, rowid, answer, recipe, place)"
    " SELECT 'delete', id, {row}.answer, lower(hex(recipe)), path FROM items"
    " WHERE fingerprint = {row}.fingerprint AND {row}.kind = 'text' AND "
    + _NOT_QUEUED.format(id="items.id")
)
_QUEUE_ANSWER = (
    "INSERT INTO search_pending (item) SELECT id FROM items"
    " WHERE fingerprint = {row}.fingerprint AND " + _NOT_QUEUED.format(id="items.id")
)
SEARCH_TRIGGERS = {
    "search_item_added": ("AFTER INSERT ON items", [_QUEUE_ITEM.format(item="new")]),
    "search_item_removed": ("AFTER DELETE ON items", [_FORGET_ITEM.format(item="old")]),
    "search_item_changed": (
        "AFTER UPDATE OF id, fingerprint, recipe, path ON items",
        [_FORGET_ITEM.format(item="old"), _QUEUE_ITEM.format(item="new")],
    ),
    "search_answer_added": ("AFTER INSERT ON cache", [_QUEUE_ANSWER.format(row="new")]),
    "search_answer_removed": ("AFTER DELETE ON cache", [_FORGET_ANSWER.format(row="old")]),
    "search_answer_changed": (
        "AFTER UPDATE ON cache",
        [_FORGET_ANSWER.format(row="old"), _QUEUE_ANSWER.format(row="new")],
    ),
}
SEARCH_SCHEMA = [
    # The cache triggers find an answer's items by fingerprint.
    "CREATE INDEX IF NOT EXISTS items_fingerprint ON items (fingerprint)",
    "CREATE VIEW search_docs AS SELECT i.id AS id, c.answer AS answer,"
    " lower(hex(i.recipe)) AS recipe, i.path AS place FROM items i"
    " JOIN cache c ON c.fingerprint = i.fingerprint WHERE c.kind = 'text'",
    "CREATE VIRTUAL TABLE search_index USING fts5 (answer, recipe, place,"
    " content = 'search_docs', content_rowid = 'id',"
    " tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TABLE search_pending (item INTEGER PRIMARY KEY)",
    *(
        f"CREATE TRIGGER {name} {when} BEGIN {'; '.join(body)}; END"
        for name, (when, body) in SEARCH_TRIGGERS.items()
    ),
]
# Adds the queued documents (those whose item still has a text answer) and empties the queue.
SEARCH_FLUSH = (
    "INSERT INTO search_index (rowid, answer, recipe, place) SELECT id, answer, recipe, place"
    " FROM search_docs WHERE id IN (SELECT item FROM search_pending)",
    "DELETE FROM search_pending",
)


# Append only: each runs once per database, in order, recorded in `_migrations`.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_renames", _m002_renames),
    ("003_history_meta", _m003_history_meta),
    ("004_pictures", _m004_pictures),
    ("005_run_backends", _m005_run_backends),
    ("006_output_size", _m006_output_size),
    ("007_run_written_dry_run", _m007_run_written_dry_run),
    ("008_claims", _m008_claims),
    ("009_started_models", _m009_started_models),
    ("010_bench", _m010_bench),
    ("011_replaced", _m011_replaced),
    ("012_search", _m012_search),
]


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database lacks, inside the caller's transaction (which
    holds the write lock, so two runs starting at once apply each migration once)."""
    import sqlite_utils  # only here: it costs ~0.2 s at start, and a current DB needs none

    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    db = sqlite_utils.Database(conn)
    for name, func in MIGRATIONS:
        if name not in done:
            func(db)
            conn.execute(
                "INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat(timespec="milliseconds")),
            )
