"""pipeline.recipe: loading recipes, --set overrides and the errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import recipe as recipes
from pipeline.errors import RecipeError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_builtin_recipe_loads_and_set_overrides() -> None:
    r = recipes.load("summarize-text", ["ask.max_tokens=42", "ask.stop=['END']"])
    assert r.steps[0].max_tokens == 42 and r.steps[0].stop == ("END",)
    assert r.origin == "built-in" and "*.md" in r.inputs
    assert r.ask_key("m1") != r.ask_key("m2")
    assert r.ask_key("m1") != recipes.load("summarize-text").ask_key("m1")


def test_steps_can_use_earlier_answers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[steps]]
name = "gist"
prompt = "Gist of {text}"
[[steps]]
name = "title"
prompt = "Title for {gist} (previous: {answer})"
""",
    )
    r = recipes.load(str(path), ["steps.title.max_tokens=8"])
    assert [s.name for s in r.steps] == ["gist", "title"] and r.steps[1].max_tokens == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ask]\nprompt = 1\n", "ask.prompt: expected a string"),
        ("[ask]\nprompt = 'x'\nkind = 'video'\n", "ask.kind: expected one of text"),
        ("[ask]\nprompt = '{later}'\n", "ask.prompt: unknown field {later}"),
        ("[ask]\nprompt = 'x'\nformat = 'klingon'\n", "ask.format: expected auto or one of"),
        ("colour = 'red'\n[ask]\nprompt = 'x'\n", "colour: unknown field"),
        ("[ask]\nsystem = 'x'\n", "ask.prompt: missing"),
        ("[ask]\nprompt = 'x'\n[then]\naction = 'explode'\n", "then.action: expected one of"),
        ("inputs = 'x'\n[ask]\nprompt = 'x'\n", "inputs: expected a list"),
        ("[ask\n", "not valid TOML"),
        ("[ask]\nprompt = 'x'\nrepeat_penalty = 5\n", "ask.repeat_penalty: expected 0.5 to 2.0"),
    ],
)
def test_recipe_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        recipes.load(str(path))
    assert str(path) in str(e.value) and message in str(e.value)


def test_repeat_penalty_is_in_the_fingerprint_only_when_set() -> None:
    plain = recipes.load("summarize-text", ["ask.repeat_penalty=1.0"]).steps[0]
    assert "repeat_penalty" not in plain.key()  # answers cached before the option stay valid
    tuned = recipes.load("summarize-text").steps[0]
    assert tuned.repeat_penalty == 1.1 and tuned.key()["repeat_penalty"] == 1.1


def test_set_needs_field_equals_value(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="expected FIELD=VALUE"):
        recipes.load("summarize-text", ["ask.max_tokens"])


def test_set_names_a_step_by_its_name_alone() -> None:
    recipe = recipes.load(
        "thumbnails", ["draw.prompt=a watercolor painting", "scene.max_tokens=40"]
    )
    scene, draw = recipe.steps
    assert draw.prompt.source == "a watercolor painting" and scene.max_tokens == 40
    with pytest.raises(RecipeError, match="unknown field"):
        recipes.load("thumbnails", ["nosuchstep.prompt=x"])
