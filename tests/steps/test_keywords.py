"""`kind = "keywords"`: its keys, its grammar, the normalising of whatever a model answers,
and what a llama.cpp server is sent (the grammar and the photo)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline import keywords
from pipeline import recipe as recipes
from pipeline.actions import Action, ActionContext
from pipeline.backends import connect
from pipeline.engine import Options, Runner, file_items
from pipeline.errors import RecipeError
from pipeline.sources import Filters, expand
from pipeline.steps import TEXT_SERVER, kind_of
from pipeline.steps.keywords import KeywordsStep, keyword_grammar
from pipeline.store.database import Store
from tests.conftest import ROOT
from tests.fakes.llama import MEDIA_MARKER, FakeLlama

WHERE = Path("tags.toml")
RECIPE = ROOT / "recipes" / "tag-images.toml"


def step(**table: Any) -> Any:
    return recipes.parse({"ask": {"kind": "keywords", "prompt": "tags", **table}}, WHERE).steps[0]


def error(**table: Any) -> str:
    with pytest.raises(RecipeError) as e:
        step(**table)
    return str(e.value)


# -- the step's keys and grammar -------------------------------------------------------------
def test_the_counts_make_the_grammar() -> None:
    s = step()
    assert isinstance(s, KeywordsStep) and kind_of(s).reads_image
    assert (s.min_keywords, s.max_keywords, s.case) == (5, 12, "auto")
    assert (
        s.grammar
        == keyword_grammar(5, 12)
        == (
            'root ::= " "? keyword (", " keyword){4,11}\n'
            'keyword ::= word (" " word){0,2}\n'
            'word ::= char+ ("-" char+){0,2}\n'
            "char ::= [a-zA-Z0-9] | [^\\x00-\\x7F]"
        )
    )
    assert step(min_keywords=1, max_keywords=3).grammar.startswith(
        'root ::= " "? keyword (", " keyword){0,2}\n'
    )
    assert step(min_keywords=1, max_keywords=1).grammar.startswith('root ::= " "? keyword\n')
    # min past max is read as max: the grammar stays one a server can parse
    assert step(min_keywords=9, max_keywords=4).grammar == keyword_grammar(4, 4)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"min_keywords": 0}, "ask.min_keywords: expected 1 to 50 keywords, got 0"),
        ({"max_keywords": 51}, "ask.max_keywords: expected 1 to 50 keywords, got 51"),
        ({"max_keywords": "12"}, "ask.max_keywords: expected a whole number, got '12'"),
        ({"case": "upper"}, "ask.case: expected one of auto, keep, lower, got 'upper'"),
        ({"grammar": 'root ::= "x"'}, "ask.grammar: unknown field"),
    ],
)
def test_wrong_keys_are_one_line_naming_the_field(table: dict[str, Any], message: str) -> None:
    assert error(**table).startswith(f"tags.toml: {message}")


def test_the_cache_key_reads_what_shapes_the_normalised_answer() -> None:
    base = step().key()
    assert base["kind"] == "keywords" and base["grammar"] == keyword_grammar(5, 12)
    assert step(min_keywords=3).key()["grammar"] != base["grammar"]
    for changed in ({"max_keywords": 8}, {"case": "keep"}, {"image_size": 512}):
        assert step(**changed).key() != base, changed
    assert step(min_keywords=5, max_keywords=12, case="auto").key() == base


def test_the_built_in_recipe_asks_a_vision_model_for_keywords() -> None:
    r = recipes.load(str(RECIPE))
    [s] = r.steps
    assert isinstance(s, KeywordsStep) and (s.min_keywords, s.max_keywords) == (5, 12)
    assert r.needs(TEXT_SERVER) == {"text", "vision"} and r.needs_image
    assert r.inputs == recipes.load(str(ROOT / "recipes" / "describe-images.toml")).inputs
    assert "five to twelve" in s.prompt.source and "comma" in s.prompt.source


# -- normalising -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # the model wrote common nouns in lower case: its capitals are meant
        ("dog, beach, Eiffel Tower, NASA", "dog, beach, Eiffel Tower, NASA"),
        ("dog, New York, sunset", "dog, New York, sunset"),
        # ... except the first keyword's, which may be a sentence's start
        ("Dog, beach, sunset", "dog, beach, sunset"),
        ("Eiffel Tower, beach", "Eiffel Tower, beach"),
        # every keyword capitalised: only capitals past the first letter say something
        ("Dog, Eiffel Tower, Beach, New York", "dog, Eiffel Tower, beach, New York"),
        ("Dog, iPhone, beach", "dog, iPhone, beach"),
        # an answer all in capitals is lowered whole
        ("DOG, BEACH, NEW YORK", "dog, beach, new york"),
        # duplicates, by case, hyphens and plural endings: the first one stays
        ("dog, Dog, DOG, dogs, beach", "dog, beach"),
        (
            "sea-shore, sea shores, city, cities, box, boxes, glass, glasses",
            "sea-shore, city, box, glass",
        ),
        ("bus, grass, dress", "bus, grass, dress"),
        # every script's letters, marks and digits; apostrophes joined; the rest dropped
        ("日の出, Straße am Meer, हिन्दी, 3d printer", "日の出, Straße am Meer, हिन्दी, 3d printer"),
        ('"dog", *beach*, sunset., children\'s park', "dog, beach, sunset, childrens park"),
        ("dog\x00cat, \x1b[31mred\x1b[0m, \ufffd, \x1b]0;title\x07sea", "dog cat, red, sea"),
        # more than three words is a sentence, not a keyword
        ("dog, a dog running on the beach, sand", "dog, sand"),
        # answers of models that ignore the grammar
        ("Keywords: dog; beach; sunset", "dog, beach, sunset"),
        (
            "Here are the keywords:\n1. dog\n2) beach\n- sunset\n* sand\n• sea",
            "dog, beach, sunset, sand, sea",
        ),
        ("dog、猫，sea | sky", "dog, 猫, sea, sky"),
        ("  dog ,  , beach  ,", "dog, beach"),
    ],
)
def test_normalising(answer: str, expected: str) -> None:
    assert keywords.join(keywords.normalise(answer)) == expected


def test_at_most_the_limit_are_kept_in_order() -> None:
    many = ", ".join(f"thing{i}" for i in range(40))
    assert keywords.normalise(many, limit=5) == tuple(f"thing{i}" for i in range(5))
    assert keywords.normalise(many, limit=5) == keywords.split(
        keywords.join(keywords.normalise(many, limit=5))
    )


@pytest.mark.parametrize(
    "answer",
    [
        "," * 10_000,
        "dog" + "," * 10_000 + "cat",
        "x" * 5_000_000,
        "dog, " * 1_000_000,
        "\x00\x01\x02" * 100_000,
        "-" * 100_000,
    ],
    ids=["commas", "commas-between", "one-huge-word", "repeated", "control", "hyphens"],
)
def test_hostile_answers_give_a_bounded_list(answer: str) -> None:
    found = keywords.normalise(answer)
    assert len(found) <= 12 and all(0 < len(k) <= keywords.MAX_CHARS for k in found)
    assert found in ((), ("dog",), ("dog", "cat"))


@pytest.mark.parametrize(
    ("case", "expected"),
    [("keep", "Hund, Strand, Eiffel Tower"), ("lower", "hund, strand, eiffel tower")],
)
def test_the_case_setting(case: str, expected: str) -> None:
    answer = "Hund, Strand, Eiffel Tower"
    assert keywords.join(keywords.normalise(answer, case=case)) == expected


# -- what the server is sent, and what comes back --------------------------------------------
def run(tmp_path: Path, server: FakeLlama, **table: Any) -> list[dict[str, Any]]:
    folder = tmp_path / "photos"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (2000, 1000), (200, 120, 10)).save(folder / "wide.jpg")
    raw = {"inputs": ["*.jpg"], "ask": {"kind": "keywords", "prompt": "Keywords:", **table}}
    r = recipes.parse(raw, tmp_path / "tags.toml")
    out = io.StringIO()
    backend = connect(server.url)
    store = Store(tmp_path / "state.db")
    try:
        action = Action.open(ActionContext(r, store, out, as_json=True, model="m"))
        entries = expand([str(folder)], Filters(patterns=r.inputs))
        Runner(r, backend, store, action, Options()).run(file_items(entries), [])
    finally:
        store.close()
        backend.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_server_gets_the_grammar_and_the_photo_and_the_answer_is_normalised(
    tmp_path: Path,
) -> None:
    answer = " Dog, Eiffel Tower, Dogs, Beach, New York, Sunset"
    with FakeLlama(vision=True, answer=lambda _: answer) as server:
        records = run(tmp_path, server, max_keywords=4, image_size=512)
        sent = [b for p, b in server.requests if p == "/completion"][-1]
    assert [(r["status"], r["answer"]) for r in records] == [
        ("done", "dog, Eiffel Tower, beach, New York")
    ]
    assert sent["grammar"] == keyword_grammar(5, 4) == keyword_grammar(4, 4)
    assert MEDIA_MARKER in sent["prompt"]["prompt_string"]
    photo = Image.open(io.BytesIO(base64.b64decode(sent["prompt"]["multimodal_data"][0])))
    assert photo.format == "JPEG" and photo.size == (512, 256)


def test_an_answer_without_keywords_fails_its_item_in_one_line(tmp_path: Path) -> None:
    with FakeLlama(vision=True, answer=lambda _: ", ;\n" * 1000) as server:
        records = run(tmp_path, server)
    assert [(r["status"], r["error"]) for r in records] == [
        ("failed", "the model's answer held no keywords")
    ]
