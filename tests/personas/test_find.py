"""Finding a card or a user persona by path or by name (stem or the card's own name, without
case) in pipe's config folder, SillyTavern's folders and the built-in cards; `found()`
lists them all and passes over files it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import paths
from pipeline.personas import BadCard, Persona, found, load
from pipeline.personas.find import LIBRARIAN, Found, find_user
from tests.personas.make import b64, json_card, png_card, st_settings, v2, v3


@pytest.fixture
def tavern(tmp_path: Path) -> Path:
    """A SillyTavern folder as 1.12 lays it out: data/<user>/characters and settings.json."""
    root = tmp_path / "SillyTavern"
    characters = root / "data" / "default-user" / "characters"
    characters.mkdir(parents=True)
    png_card(characters / "Keeper.png", ("tEXt", "chara", b64(v2(name="Mira"))))
    png_card(characters / "Broken.png", ("tEXt", "chara", "%%%"))
    st_settings(
        root / "data" / "default-user" / "settings.json",
        {"sam.png": "Sam"},
        {"sam.png": {"description": "A sailor.\nSecond line.", "position": 0}},
    )
    return root


def mine() -> Path:
    folder = paths.config_dir() / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_path_is_read_as_it_is(tmp_path: Path) -> None:
    path = json_card(tmp_path / "odd name.json", v3(name="Vee"))
    persona = load(str(path))
    assert isinstance(persona, Persona) and persona.name == "Vee"
    assert persona.source == str(path)
    with pytest.raises(BadCard, match=r"^nowhere/x\.png: no such card file$"):
        load("nowhere/x.png")


def test_by_stem_or_by_card_name_without_case_in_sillytavern(tavern: Path) -> None:
    assert load("keeper", sillytavern=tavern).name == "Mira"
    assert load("MIRA", sillytavern=tavern).name == "Mira"
    assert load("Mira", sillytavern=tavern).source.endswith("Keeper.png")


def test_the_built_in_librarian_and_a_users_card_of_the_same_name_replacing_it() -> None:
    assert load("librarian").source == "built-in librarian"
    assert load(LIBRARIAN).source == "built-in librarian"
    json_card(mine() / "Librarian.json", v2(name="My own"))
    assert load("LIBRARIAN").name == "My own"


def test_an_unknown_name_says_where_it_looked_and_how_to_list(tavern: Path) -> None:
    with pytest.raises(BadCard) as caught:
        load("nobody", sillytavern=tavern)
    message = str(caught.value)
    assert "no card named 'nobody'" in message and "'pipe personas' lists them" in message
    assert str(tavern / "data" / "default-user" / "characters") in message
    assert str(paths.config_dir() / "personas") in message and "built-in" in message
    assert "\n" not in message


def test_a_user_persona_by_name_from_sillytavern_or_a_text_file(tavern: Path) -> None:
    persona = load("keeper", user="sam", sillytavern=tavern)
    assert persona.user == "Sam" and "A sailor." in persona.system
    (mine() / "Pat.txt").write_text("Pat fixes radios.")
    assert "Pat fixes radios." in load("keeper", user="pat", sillytavern=tavern).system
    with pytest.raises(BadCard, match="no user persona named 'kim'.*'pipe personas'"):
        find_user("kim", tavern)


def test_a_user_persona_as_a_path(tmp_path: Path) -> None:
    me = tmp_path / "me.txt"
    me.write_text("{{user}} is new here.")
    assert load("librarian", user=str(me)).user == "me"
    assert "me is new here." in load("librarian", user=str(me)).system


def test_found_lists_every_card_and_persona_and_passes_over_what_it_cannot_read(
    tavern: Path,
) -> None:
    (mine() / "Pat.txt").write_text("\n\nPat fixes radios.\nAnd clocks.")
    listed = found(tavern)
    broken = tavern / "data" / "default-user" / "characters" / "Broken.png"
    assert [(f.kind, f.name, f.first_line) for f in listed if not f.problem] == [
        ("card", "Mira", "Mira keeps the lighthouse; User is a visitor."),
        ("card", "Wren", found()[0].first_line),
        ("user", "Pat", "Pat fixes radios."),
        ("user", "Sam", "A sailor."),
    ]
    (problem,) = [f for f in listed if f.problem]
    assert problem == Found("card", "Broken", "", str(broken), problem.problem)
    assert problem.problem.startswith(f"{broken}: ")


def test_sillytavern_pointed_at_its_data_or_user_folder(tavern: Path) -> None:
    for folder in (tavern / "data", tavern / "data" / "default-user"):
        assert load("mira", user="sam", sillytavern=folder).user == "Sam"
