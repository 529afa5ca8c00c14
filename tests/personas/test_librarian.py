"""pipe's own card: the librarian `--persona librarian` and `pipe bench` use. It must be a
whole card (what a SillyTavern user expects in one) and ship inside the wheel."""

from __future__ import annotations

import fnmatch
import json
import tomllib

from pipeline.personas import LIBRARIAN, load, read_card
from pipeline.personas.render import examples
from tests.conftest import ROOT


def test_the_librarian_is_a_whole_v2_card() -> None:
    card = read_card(LIBRARIAN)
    assert card.spec == "v2" and LIBRARIAN.stem == "librarian"
    for field in ("description", "personality", "scenario", "first_mes", "mes_example"):
        assert getattr(card, field).strip(), field
    assert 2 <= len(examples(card.mes_example)) <= 3
    assert card.portrait_prompt and "librarian" in card.portrait
    raw = json.loads(LIBRARIAN.read_text())
    assert raw["data"]["extensions"]["pipe"]["portrait"] == card.portrait


def test_its_rendered_text_is_the_size_bench_is_built_around() -> None:
    """~830 tokens by SmolLM2's tokenizer (828 when written); words are a stable proxy."""
    persona = load("librarian")
    assert persona.name == "Wren" and persona.after == ""
    assert 550 <= len(persona.system.split()) <= 700
    assert "{{" not in persona.system and "<START>" not in persona.system


def test_the_card_ships_in_the_wheel() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "pipeline.personas" in project["packages"]
    patterns = project["package-data"]["pipeline.personas"]
    relative = LIBRARIAN.relative_to(ROOT / "pipeline" / "personas").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)
