"""The hint fields as recipes see them: which are read, what `system` takes, and what enters
the answer cache's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import recipe
from pipeline.errors import RecipeError
from pipeline.hints import Hints, key_inputs, names_in, recipe_names
from pipeline.hints.system import compile_system
from pipeline.templates import compile_template
from tests.conftest import ROOT


def load(tmp_path: Path, text: str) -> recipe.Recipe:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return recipe.load(str(path))


def test_system_takes_the_item_fields_and_keeps_everything_else() -> None:
    source = 'Of {folder|upper}, {exif.place|or:?}: {{folder}} {"a": {text}} {answer} {nope} }{'
    template = compile_system(source)
    assert [f.name for f in template.fields] == ["folder", "exif.place"]
    rendered = template.render({"folder": "beach", "exif": {"place": ""}})
    assert rendered == 'Of BEACH, ?: {{folder}} {"a": {text}} {answer} {nope} }{'
    assert compile_system("plain {x}").render({}) == "plain {x}"


def test_only_the_fields_used_are_read(tmp_path: Path) -> None:
    photo = tmp_path / "Beach" / "grandma at the sea.jpg"
    assert Hints(set()).read(str(photo), {"lat": 1.0}) == {}
    assert Hints({"folder"}).read(str(photo), None) == {"folder": "Beach"}
    assert Hints({"name_hint", "stem"}).read(str(photo), None) == {
        "name_hint": "grandma at the sea"
    }
    assert Hints({"folder", "name_hint", "existing.caption"}).read(None, None) == {
        "folder": "",
        "name_hint": "",
        "existing": {"caption": "", "keywords": ""},
    }


def test_the_recipes_hint_names(tmp_path: Path) -> None:
    r = load(
        tmp_path,
        "[ask]\nkind = 'vision'\nprompt = '{folder} {exif.date:%Y} {name}'\n"
        "system = 'In {exif.country}.'\n"
        "[then]\naction = 'rename'\nname = '{exif.place|slug}_{answer|slug}{ext}'\n",
    )
    assert recipe_names(r) == {"folder", "exif.country", "exif.place"}
    assert names_in(r.steps[0].templates()) == {"folder", "exif.country"}


def test_cache_inputs_only_for_a_step_that_uses_hints() -> None:
    values = {"folder": "Beach", "exif": {"place": "Arezzo, Tuscany, Italy", "date": 1}}
    plain = compile_template("Describe {name} from {exif.date}.")
    assert key_inputs([plain], values) == {}
    used = compile_template("From {folder}, at {exif.place|or:x}.")
    assert key_inputs([plain, used], values) == {
        "{exif.place}": "Arezzo, Tuscany, Italy",
        "{folder}": "Beach",
    }


def test_the_shipped_recipes_use_no_hint_and_keep_their_keys() -> None:
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        r = recipe.load(str(path))
        for step in r.steps:
            assert names_in(step.templates()) == frozenset(), path
            assert "language" not in step.key(), path


def test_language_is_in_the_key_only_when_set(tmp_path: Path) -> None:
    base = "[ask]\nprompt = 'Hello {text}'\ngrammar = 'root ::= [a-z]+'\n"
    plain = load(tmp_path, base).steps[0]
    german = load(tmp_path, base + "language = 'de'\n").steps[0]
    assert german.key() == {**plain.key(), "language": "de"}
    assert plain.grammar_text() == "root ::= [a-z]+" and "[a-z]" not in german.grammar_text()
    assert german.prompt_text("Hi") == "Hi\n\nAnswer in German."


@pytest.mark.parametrize("name", ["folder", "existing", "name_hint"])
def test_a_step_cannot_take_a_hints_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(RecipeError, match="must be a new identifier"):
        load(tmp_path, f"[[steps]]\nname = '{name}'\nprompt = 'x {{text}}'\n")


def test_a_bad_language_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"ask\.language: unknown language code 'zz'"):
        load(tmp_path, "[ask]\nprompt = 'x'\nlanguage = 'zz'\n")
    with pytest.raises(RecipeError, match=r"ask\.language: expected a string"):
        load(tmp_path, "[ask]\nprompt = 'x'\nlanguage = 3\n")


def test_a_bad_spec_in_system_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"ask\.system: format spec of \{folder:,\}"):
        load(tmp_path, "[ask]\nprompt = 'x'\nsystem = 'In {folder:,}'\n")
    assert load(tmp_path, "[ask]\nprompt = 'x'\nsystem = 'In {exif.date:%Y}'\n")
