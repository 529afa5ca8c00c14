"""What a server chosen by URL or default port said, kept in the store by that choice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.backends import ServerInfo, connect
from pipeline.backends.lazy import LazyBackend
from pipeline.servers import known, remembered
from pipeline.store.database import Store
from tests.fakes.llama import FakeLlama

SAID = ServerInfo(
    kind="koboldcpp",
    url="http://me:hunter2@127.0.0.1:5001",
    model="koboldcpp/gemma-7b-it.Q4_K_M",
    slots=1,
    n_ctx=8192,
    abilities=frozenset({"text", "txt2img"}),
    image_model="sd15",
)


def test_a_choice_is_its_role_its_urls_in_any_order_and_the_model_asked_for() -> None:
    urls = ["http://a:8080", "http://b:8080"]
    assert remembered.chosen("text", urls) == remembered.chosen("text", urls[::-1])
    assert remembered.chosen("text", urls) != remembered.chosen("draw", urls)
    assert remembered.chosen("text", urls) != remembered.chosen("text", urls, "llava")
    assert remembered.chosen("text", []) != remembered.chosen("text", urls[:1])
    secret = remembered.chosen("text", ["http://me:hunter2@a:8080"])
    assert "hunter2" not in secret and secret.startswith("chosen:")


def test_what_a_chosen_server_said_comes_back_without_its_password(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    choice = remembered.chosen("text", [SAID.url])
    assert remembered.recall_chosen(store, choice) is None
    remembered.remember_chosen(store, choice, SAID)
    back = remembered.recall_chosen(store, choice)
    assert back is not None and "hunter2" not in back.url
    assert replace(back, url=SAID.url) == SAID
    assert remembered.recall_chosen(store, remembered.chosen("draw", [SAID.url])) is None
    rows = store.conn.execute("SELECT model, identity, info FROM started_models").fetchall()
    assert len(rows) == 1 and "hunter2" not in repr(rows)
    store.close()


def test_a_known_server_that_says_the_same_leaves_the_store_be(tmp_path: Path) -> None:
    """Opened on first need, a server that says what it said before writes nothing (a cron
    run leaves the store be); news (more slots) is kept for the next run."""
    store = Store(tmp_path / "s.db")
    with FakeLlama(model="m", slots=2) as fake:
        choice = remembered.chosen("text", [fake.url])

        def run() -> None:
            said = remembered.recall_chosen(store, choice)
            opener = lambda: connect(fake.url)  # noqa: E731
            with known.chosen_server(store, choice, said, fake.url, opener) as b:
                if isinstance(b, LazyBackend):
                    b.open()

        run()  # the first time: asked at once and remembered
        asked = len(fake.requests)
        store.conn.execute("UPDATE started_models SET updated = 'then'")
        run()
        assert len(fake.requests) > asked  # opened this time: it was needed
        assert store.conn.execute("SELECT updated FROM started_models").fetchone()[0] == "then"
        fake.slots = 4
        run()
    assert store.conn.execute("SELECT updated FROM started_models").fetchone()[0] != "then"
    back = remembered.recall_chosen(store, choice)
    assert back is not None and back.slots == 4 and back.model == "m"
    store.close()


def test_a_row_that_is_not_what_pipe_wrote_is_never_known(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    choice = remembered.chosen("text", ["http://a:8080"])
    remembered.remember_chosen(store, choice, SAID)
    for bad in ('{"model": 5}', "[", '{"kind": "k", "model": "m", "url": 5}', "x" * 70000):
        store.conn.execute("UPDATE started_models SET info = ?", (bad,))
        assert remembered.recall_chosen(store, choice) is None
    store.close()
