"""The search part of the store: the FTS5 index kept in step with the answers by the
triggers of migration 012_search, and what a search gives back."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.answers import Picture
from pipeline.store import items, schema
from pipeline.store.database import Store
from pipeline.store.search import BadQuery, Where


def consistent(store: Store) -> None:
    """FTS5's own check of the index against the text it was made from (the view over
    items and cache): raises if a trigger ever told it the wrong text."""
    store.search.flush()  # documents queued for the index are not in it yet
    check = "INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)"
    store.conn.execute(check)


def answer_row(fingerprint: str, answer: object) -> dict[str, object]:
    return {
        "fingerprint": fingerprint,
        "step": "ask",
        "answer": answer,
        "model": "m",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "duration_ms": 1,
    }


def record(store: Store, recipe: str, path: Path, answer: object, fingerprint: str) -> None:
    """One file finished with this answer, through the store's own write path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("x")
    run_id = store.start_run(recipe, "built-in", [], "u", "m")
    assert store.claim(recipe, str(path), run_id, 1, 1, "k", True)[0] == "claimed"
    history = {
        "status": "done", "fingerprint": fingerprint, "error": None, "note": None,
        "started": "2026-12-01T00:00:00", "duration_ms": 1, "prompt_tokens": 1,
        "completion_tokens": 1, "attempts": 1,
    }  # fmt: skip
    store.finish(
        recipe, str(path), run_id, status="done", size=1, mtime_ns=1, hash=None, ask_key="k",
        fingerprint=fingerprint, reason=None, attempts=1, history=history,
        cache_rows=[answer_row(fingerprint, answer)],
    )  # fmt: skip


def paths(store: Store, query: str, **where: str) -> list[str]:
    return [hit.path for hit in store.search.search(query, Where(**where))]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with_store = Store(tmp_path / "s.db")
    yield with_store
    with_store.close()


def test_an_answer_is_found_by_its_words_case_accents_and_stems_aside(
    store: Store, tmp_path: Path
) -> None:
    photo = tmp_path / "a.jpg"
    record(store, "describe-images", photo, "Two Dogs outside the Café on the beach", "F1")
    record(store, "describe-images", tmp_path / "b.jpg", "A red boat", "F2")
    for query in ("cafe", "CAFÉ", "dog", "dogs beach", '"the beach"', "caf*"):
        assert paths(store, query) == [str(photo)], query
    (hit,) = store.search.search("cafe")
    assert hit.recipe == "describe-images" and hit.answer.startswith("Two Dogs")
    assert ("Café", True) in hit.snippet
    assert hit.snippet_text() == "Two Dogs outside the [Café] on the beach"
    consistent(store)


def test_the_best_match_comes_first(store: Store, tmp_path: Path) -> None:
    record(store, "r", tmp_path / "once.txt", "a sunset and a long story about other things", "F1")
    record(store, "r", tmp_path / "twice.txt", "sunset sunset", "F2")
    assert paths(store, "sunset") == [str(tmp_path / "twice.txt"), str(tmp_path / "once.txt")]
    ranks = [hit.rank for hit in store.search.search("sunset")]
    assert ranks == sorted(ranks)


def test_a_picture_answer_is_not_indexed(store: Store, tmp_path: Path) -> None:
    picture = Picture(sha256="ab" * 32, width=8, height=8, seed=1, infotext="a sunset", png=None)
    record(store, "draw", tmp_path / "p.txt", picture, "F1")
    assert paths(store, "sunset") == []
    assert store.conn.execute("SELECT count(*) FROM search_docs").fetchone()[0] == 0
    consistent(store)


def test_a_replaced_answer_replaces_the_indexed_text(store: Store, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    record(store, "describe-images", photo, "a grey cat", "F1")
    record(store, "describe-images", photo, "a black horse", "F1")  # --redo: same fingerprint
    consistent(store)
    assert paths(store, "cat") == [] and paths(store, "horse") == [str(photo)]
    record(store, "describe-images", photo, "a white swan", "F2")  # new settings: new answer
    consistent(store)
    assert paths(store, "horse") == [] and paths(store, "swan") == [str(photo)]


def test_a_forgotten_answer_is_forgotten_by_the_index(store: Store, tmp_path: Path) -> None:
    record(store, "r", tmp_path / "a.txt", "an unusable answer", "F1")
    store.forget_answer("F1")
    consistent(store)
    assert paths(store, "unusable") == []


def test_insert_or_replace_and_deletes_keep_the_index_in_step(store: Store, tmp_path: Path) -> None:
    """Writes other than the store's own statements: REPLACE fires the delete triggers
    (the store's connections turn on recursive_triggers), items deleted by undo."""
    record(store, "r", tmp_path / "a.txt", "first words", "F1")
    record(store, "r", tmp_path / "b.txt", "first words", "F1")  # the same answer, two files
    with store.transaction() as c:
        c.execute("INSERT OR REPLACE INTO cache (fingerprint, answer) VALUES ('F1', 'other')")
    consistent(store)
    assert paths(store, "first") == [] and len(paths(store, "other")) == 2
    store.journal.reopen(str(tmp_path / "x.txt"), str(tmp_path / "b.txt"))
    consistent(store)
    assert paths(store, "other") == [str(tmp_path / "a.txt")]


def test_existing_answers_are_indexed_on_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [m for m in schema.MIGRATIONS if m[0] != "012_search"]
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", before)
        patch.setattr(items, "flush", lambda *_: None)  # as a pipe before the index wrote
        old = Store(tmp_path / "s.db")
        record(old, "r", tmp_path / "a.txt", "an old answer about a lighthouse", "F1")
        old.close()
    upgraded = Store(tmp_path / "s.db")
    assert paths(upgraded, "lighthouse") == [str(tmp_path / "a.txt")]
    consistent(upgraded)
    upgraded.close()


def test_filters_recipe_folder_and_time(store: Store, tmp_path: Path) -> None:
    a, b = tmp_path / "one" / "a.jpg", tmp_path / "two" / "b.jpg"
    record(store, "describe-images", a, "a sunset", "F1")
    record(store, "tag-images", b, "sunset, sea", "F2")
    assert sorted(paths(store, "sunset")) == [str(a), str(b)]
    assert paths(store, "sunset", recipe="tag-images") == [str(b)]
    assert paths(store, "sunset", under=str(tmp_path / "one")) == [str(a)]
    assert paths(store, "sunset", under=str(a)) == [str(a)]
    assert paths(store, "sunset", under=str(tmp_path / "on")) == []  # a folder, not a prefix
    assert len(paths(store, "sunset", since="2000-01-01T00:00:00+00:00")) == 2
    assert paths(store, "sunset", since="2999-01-01T00:00:00+00:00") == []


def test_a_hit_is_where_pipe_renamed_the_file_and_a_gone_file_is_left_out(
    store: Store, tmp_path: Path
) -> None:
    old, new = tmp_path / "IMG_1.jpg", tmp_path / "red-boat.jpg"
    record(store, "describe-images", old, "a red boat", "F1")
    record(store, "rename-images", old, "red boat", "F2")
    run_id = store.start_run("rename-images", "built-in", [], "u", "m")
    move = SimpleNamespace(group=0, companion=False, old=str(old), new=str(new))
    (rename_id,) = store.journal.write_plan(run_id, [(move, (0, 0, 1, 1))])
    os.rename(old, new)
    store.journal.mark(rename_id, "applied")
    store.adopt("rename-images", str(new), run_id, 1, 1, None, "k", "F2")
    hits = store.search.search("boat")
    assert sorted((hit.path, hit.recipe) for hit in hits) == [
        (str(new), "describe-images"),
        (str(new), "rename-images"),  # once, though two items (old and new name) hold it
    ]
    assert {hit.recorded for hit in hits if hit.recipe == "describe-images"} == {str(old)}
    new.unlink()
    assert paths(store, "boat") == []


def test_a_query_fts5_cannot_read_is_one_bad_query_line(store: Store, tmp_path: Path) -> None:
    record(store, "r", tmp_path / "a.txt", "words", "F1")
    for query, problem in (
        ('"unbalanced', "unterminated string"),
        ("AND AND", "syntax error"),
        ("col:x", "no such column"),
        ("   ", "empty"),
    ):
        with pytest.raises(BadQuery, match=problem) as caught:
            store.search.search(query)
        assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_snippet_marks_cannot_be_forged_by_an_answer(store: Store, tmp_path: Path) -> None:
    hostile = "[x] <b>sunset</b> \x1b]0;title\x07 end\nnext line"
    record(store, "r", tmp_path / "a.txt", hostile, "F1")
    (hit,) = store.search.search("sunset")
    assert [text for text, match in hit.snippet if match] == ["sunset"]
    assert "".join(text for text, _ in hit.snippet) == hostile.replace("\n", " ")
    assert hit.answer == hostile


def test_limit_counts_hits(store: Store, tmp_path: Path) -> None:
    for n in range(30):
        record(store, "r", tmp_path / f"{n:02}.txt", f"harbour number {n}", f"F{n}")
    assert len(store.search.search("harbour", limit=7)) == 7
    assert len(store.search.search("harbour", limit=100)) == 30


def test_windows_rank_within_and_reach_every_match(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranking is done WINDOW matches at a time, newest first: a search still reaches every
    match, and is exact within a window."""
    from pipeline.store import search

    monkeypatch.setattr(search, "WINDOW", 4)
    for n in range(10):  # the later, the more often the word
        record(store, "r", tmp_path / f"{n:02}.txt", "gull " * (n % 4 + 1) + "end", f"F{n}")
    found = store.search.search("gull", limit=100)
    assert sorted(hit.path for hit in found) == sorted(str(p) for p in tmp_path.glob("*.txt"))
    names = [Path(hit.path).name for hit in found]
    assert names[:4] == ["07.txt", "06.txt", "09.txt", "08.txt"]  # the newest 4, by rank
    assert [Path(h.path).name for h in store.search.search("gull", Where(recipe="r"), 3)] == [
        "07.txt",
        "06.txt",
        "09.txt",
    ]


def test_recipe_and_folder_are_matched_exactly_not_as_words(store: Store, tmp_path: Path) -> None:
    """The index narrows --recipe and --under by their words; the items are then checked
    exactly, so a sibling folder sharing the words, or a recipe's longer name, is not in."""
    record(store, "tag", tmp_path / "trip" / "a.jpg", "a gull", "F1")
    record(store, "tag-v2", tmp_path / "trip-old" / "b.jpg", "a gull", "F2")
    record(store, "tag", tmp_path / "trip" / "deep" / "c.jpg", "a gull", "F3")
    assert sorted(paths(store, "gull", under=str(tmp_path / "trip"))) == [
        str(tmp_path / "trip" / "a.jpg"),
        str(tmp_path / "trip" / "deep" / "c.jpg"),
    ]
    assert paths(store, "gull", recipe="tag-v2") == [str(tmp_path / "trip-old" / "b.jpg")]
    assert len(paths(store, "gull", recipe="tag")) == 2
    assert len(paths(store, "gull", under="/")) == 3
    assert paths(store, "gull", recipe='a "quoted" recipe') == []  # a phrase, never syntax
    # The query is held to the answers: words of a path or recipe name do not match it.
    assert paths(store, "trip") == [] and paths(store, "tag") == []
    assert paths(store, "recipe : tag") == []


def test_answers_are_indexed_in_batches_and_found_at_once(store: Store, tmp_path: Path) -> None:
    """FTS5 writes a segment per commit: a run's answers wait in a queue and go into the
    index FLUSH_EVERY at a time, the rest when the store closes or a search begins."""
    from pipeline.store.search import FLUSH_EVERY

    def queued() -> int:
        return store.conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]

    for n in range(3):
        record(store, "r", tmp_path / f"{n}.txt", "a heron", f"F{n}")
    assert queued() == 3
    assert len(paths(store, "heron")) == 3 and queued() == 0  # the search added them first
    for n in range(3, 3 + FLUSH_EVERY):
        record(store, "r", tmp_path / f"{n}.txt", "a heron", f"F{n}")
    assert queued() == 0  # the 64th finished item added the batch
    record(store, "r", tmp_path / "last.txt", "a heron", "F-last")
    store.close()
    reopened = Store(tmp_path / "s.db")
    assert reopened.conn.execute("SELECT count(*) FROM search_pending").fetchone()[0] == 0
    consistent(reopened)
    assert len(reopened.search.search("heron", limit=100)) == 4 + FLUSH_EVERY
    reopened.close()


def test_a_window_whose_matches_are_all_filtered_out_is_passed_over(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.store import search

    monkeypatch.setattr(search, "WINDOW", 2)
    older = [tmp_path / "p1" / "x" / f"{n}.txt" for n in range(2)]
    newer = [tmp_path / "p2" / "x" / f"{n}.txt" for n in range(5)]  # the same folder name
    for n, path in enumerate(older + newer):
        record(store, "r", path, "a wren", f"F{n}")
    found = paths(store, "wren", under=str(tmp_path / "p1" / "x"))
    assert sorted(found) == sorted(str(p) for p in older)
