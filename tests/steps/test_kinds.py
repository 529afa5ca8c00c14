"""Each step kind of the registry: the keys it reads, the errors for wrong ones, what its
cache key reads, and what it needs of its server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import recipe as recipes
from pipeline.errors import RecipeError
from pipeline.steps import IMAGE_SERVER, KINDS, PICTURE, TEXT, TEXT_SERVER, kind_of
from pipeline.steps.base import SHARED_KEYS
from pipeline.steps.drawing import DrawStep
from pipeline.steps.text import TextStep

WHERE = Path("r.toml")


def step(**table: Any) -> Any:
    return recipes.parse({"ask": {"prompt": "about {text}", **table}}, WHERE).steps[0]


def error(**table: Any) -> str:
    with pytest.raises(RecipeError) as e:
        step(**table)
    return str(e.value)


def test_the_registry_holds_the_five_kinds_text_first() -> None:
    assert list(KINDS) == ["text", "vision", "txt2img", "img2img", "keywords"]
    assert type(step()).__name__ == "TextStep" and step().kind == "text"  # the default


@pytest.mark.parametrize(
    ("kind", "abilities", "server", "answers", "reads_image"),
    [
        ("text", {"text"}, TEXT_SERVER, TEXT, False),
        ("vision", {"text", "vision"}, TEXT_SERVER, TEXT, True),
        ("txt2img", {"txt2img"}, IMAGE_SERVER, PICTURE, False),
        ("img2img", {"img2img"}, IMAGE_SERVER, PICTURE, True),
        ("keywords", {"text", "vision"}, TEXT_SERVER, TEXT, True),
    ],
)
def test_each_kind_declares_what_it_needs_and_answers(
    kind: str, abilities: set[str], server: str, answers: str, reads_image: bool
) -> None:
    declared = kind_of(step(kind=kind))
    assert declared is KINDS[kind]
    assert declared.abilities == abilities
    assert (declared.server, declared.answers, declared.reads_image) == (
        server,
        answers,
        reads_image,
    )
    parsed = recipes.parse({"ask": {"prompt": "x", "kind": kind}}, WHERE)
    assert parsed.needs(server) == abilities
    assert parsed.draws == (server == IMAGE_SERVER) and parsed.asks == (server == TEXT_SERVER)
    assert parsed.needs_image == reads_image


def test_a_recipe_needs_what_all_its_steps_need() -> None:
    both = recipes.parse(
        {
            "steps": [
                {"name": "looks", "kind": "vision", "prompt": "x"},
                {"name": "plain", "prompt": "{looks}"},
                {"name": "draw", "kind": "txt2img", "prompt": "{plain}"},
            ]
        },
        WHERE,
    )
    assert both.needs(TEXT_SERVER) == {"text", "vision"}
    assert both.needs(IMAGE_SERVER) == {"txt2img"}


def test_text_keys_are_read_and_kept() -> None:
    s = step(
        system="be brief",
        max_tokens=9,
        temperature=1,
        repeat_penalty=1.1,
        stop=["\n"],
        grammar='root ::= "a"',
        format="chatml",
        image_size=512,
    )
    assert isinstance(s, TextStep)
    assert (s.system, s.max_tokens, s.stop, s.grammar, s.format) == (
        "be brief",
        9,
        ("\n",),
        'root ::= "a"',
        "chatml",
    )
    assert s.temperature == 1.0 and isinstance(s.temperature, float)
    assert s.repeat_penalty == 1.1 and s.image_size == 512


def test_drawing_keys_are_read_and_kept() -> None:
    s = step(
        kind="txt2img",
        width=640,
        height=128,
        seed=5,
        sampler=" DDIM ",
        steps=3,
        cfg_scale=2,
        negative_prompt="blurry",
    )
    assert isinstance(s, DrawStep)
    assert (s.width, s.height, s.seed, s.sampler, s.steps) == (640, 128, 5, "DDIM", 3)
    assert s.cfg_scale == 2.0 and isinstance(s.cfg_scale, float)
    assert s.negative_prompt == "blurry" and s.denoising_strength == 0.6


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"kind": "foo"},
            "ask.kind: expected one of text, vision, txt2img, img2img, keywords, got 'foo'",
        ),
        ({"kind": 3}, "ask.kind: expected a string, got 3"),
        ({"name": "text"}, "ask.name: 'text' must be a new identifier, not a field name"),
        ({"max_tokens": 0}, "ask.max_tokens: expected 1 to 1000000, got 0"),
        ({"max_tokens": True}, "ask.max_tokens: expected a whole number, got True"),
        ({"temperature": 3}, "ask.temperature: expected 0.0 to 2.0, got 3"),
        ({"temperature": "hot"}, "ask.temperature: expected a number, got 'hot'"),
        ({"repeat_penalty": 0.1}, "ask.repeat_penalty: expected 0.5 to 2.0 (1.0 is off), got 0.1"),
        ({"stop": "x"}, "ask.stop: expected a list, got 'x'"),
        ({"stop": [1]}, "ask.stop: expected a list of strings"),
        ({"image_size": 10}, "ask.image_size: expected 64 to 4096 pixels, got 10"),
        ({"format": "nope"}, "ask.format: expected auto or one of"),
        ({"kind": "txt2img", "width": 100}, "ask.width: expected a multiple of 64 (image"),
        ({"kind": "txt2img", "height": 2048}, "ask.height: expected 64 to 1024 pixels, got 2048"),
        ({"kind": "img2img", "seed": -2}, "ask.seed: expected a seed >= 0, or -1 for a random one"),
        ({"kind": "txt2img", "sampler": " "}, "ask.sampler: expected a sampler name such as"),
        ({"kind": "txt2img", "steps": 81}, "ask.steps: expected 1 to 80, got 81"),
        ({"kind": "txt2img", "cfg_scale": 30}, "ask.cfg_scale: expected 1 to 25, got 30"),
        ({"kind": "img2img", "denoising_strength": 2}, "ask.denoising_strength: expected 0 to 1"),
    ],
)
def test_wrong_values_are_one_line_naming_the_field(table: dict[str, Any], message: str) -> None:
    assert error(**table).startswith(f"r.toml: {message}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_rejects_the_fields_it_does_not_read(kind: str) -> None:
    foreign = "max_tokens" if KINDS[kind].server == IMAGE_SERVER else "cfg_scale"
    known = ", ".join(sorted(SHARED_KEYS | set(KINDS[kind].keys)))
    assert error(kind=kind, **{foreign: 1}) == (
        f"r.toml: ask.{foreign}: unknown field; expected one of {known}"
    )


def test_an_unknown_kind_checks_its_fields_as_a_text_step_first() -> None:
    assert "ask.width: unknown field" in error(kind="foo", width=512)


def test_text_cache_key_reads_the_content_model_settings_and_inputs() -> None:
    s = step(max_tokens=9)
    key = s.cache_key("HASH", "model", {"a": "1"})
    assert key[:2] == ["HASH", "model"] and key[3] == {"a": "1"}
    assert key[2]["max_tokens"] == 9 and "image_size" not in key[2]
    assert "repeat_penalty" not in key[2]  # only when set: older cached answers stay valid
    assert step(repeat_penalty=1.1).key()["repeat_penalty"] == 1.1
    assert step(kind="vision", image_size=512).key()["image_size"] == 512


def test_drawing_cache_key_reads_the_content_only_when_the_picture_depends_on_it() -> None:
    seeded = step(kind="txt2img", seed=7, width=640)
    assert seeded.cache_key("HASH", "sd", {}) == ["draw", None, "sd", seeded.key(), {}]
    assert seeded.key()["width"] == 640 and "denoising_strength" not in seeded.key()
    from_content = step(kind="txt2img")
    assert from_content.cache_key("HASH", "sd", {})[1] == "HASH"
    photo = step(kind="img2img", seed=7, denoising_strength=0.3)
    assert photo.cache_key("HASH", "sd", {})[1] == "HASH"  # the photo is the input
    assert photo.key()["denoising_strength"] == 0.3 and "width" not in photo.key()


def test_the_recipes_ask_key_is_what_it_was() -> None:
    """A digest every finished item is stored under: a change would redo every folder."""
    r = recipes.parse({"ask": {"prompt": "Summarize: {text}"}}, WHERE)
    assert r.ask_key("m") == "24964691c66367284029b2b7d36d0bd8"
