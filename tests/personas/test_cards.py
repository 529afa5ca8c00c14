"""Cards in every form SillyTavern reads: PNG `chara` (V1 fields at the top, or V2), PNG
`ccv3` (V3, which wins over `chara`), and JSON V1/V2/V3. A bad card is one BadCard line
that names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.personas import cards
from pipeline.personas.cards import Card, read_card
from pipeline.personas.persona import BadCard
from tests.personas.make import V1, b64, json_card, png_bytes, png_card, v2, v3


def test_png_chara_v1(tmp_path: Path) -> None:
    card = read_card(png_card(tmp_path / "mira.png", ("tEXt", "chara", b64(V1))))
    assert card == Card(**V1, spec="v1", source=str(tmp_path / "mira.png"))


def test_png_chara_v2_reads_the_data_object_with_its_v2_fields(tmp_path: Path) -> None:
    data = v2(system_prompt="Stay in character.", post_history_instructions="Be brief.")
    data["name"] = "Top-level V1 copy"  # V2 cards keep V1 fields at the top; data wins
    card = read_card(png_card(tmp_path / "c.png", ("tEXt", "chara", b64(data))))
    assert (card.name, card.spec) == ("Mira", "v2")
    assert card.system_prompt == "Stay in character."
    assert card.post_history_instructions == "Be brief."


def test_a_v2_card_reads_data_over_the_v1_fields_at_its_top_as_sillytavern_does(
    tmp_path: Path,
) -> None:
    partial = {**V1, "spec": "chara_card_v2", "data": {"name": "Data", "scenario": None}}
    card = read_card(json_card(tmp_path / "a.json", partial))
    assert (card.name, card.description, card.scenario) == ("Data", V1["description"], "")
    no_data = read_card(json_card(tmp_path / "b.json", {**V1, "spec": "chara_card_v2"}))
    assert (no_data.name, no_data.spec) == ("Mira", "v2")


def test_a_v1_card_has_no_system_prompt_even_if_its_json_says_one(tmp_path: Path) -> None:
    card = read_card(json_card(tmp_path / "a.json", {**V1, "system_prompt": "Ignored."}))
    assert card.system_prompt == ""


def test_png_ccv3_alone(tmp_path: Path) -> None:
    card = read_card(png_card(tmp_path / "c.png", ("tEXt", "ccv3", b64(v3(name="Vee")))))
    assert (card.name, card.spec) == ("Vee", "v3")


def test_both_chunks_with_different_text_v3_wins_wherever_it_is(tmp_path: Path) -> None:
    """SillyTavern writes `chara` then `ccv3`, and reads `ccv3` first when present."""
    for order in ((0, 1), (1, 0)):
        chunks = [("tEXt", "chara", b64(v2(name="Old"))), ("tEXt", "ccv3", b64(v3(name="New")))]
        path = png_card(tmp_path / "both.png", *(chunks[i] for i in order))
        assert read_card(path).name == "New"


def test_keywords_match_without_case_and_the_first_chunk_wins(tmp_path: Path) -> None:
    path = png_card(
        tmp_path / "c.png",
        ("tEXt", "Chara", b64(v2(name="First"))),
        ("tEXt", "chara", b64(v2(name="Second"))),
    )
    assert read_card(path).name == "First"


def test_compressed_chunks_read_too(tmp_path: Path) -> None:
    path = png_card(tmp_path / "c.png", ("zTXt", "chara", b64(v2(name="Zed"))))
    assert read_card(path).name == "Zed"
    path = png_card(tmp_path / "d.png", ("iTXt", "ccv3", b64(v3(name="Ita"))))
    assert read_card(path).name == "Ita"


@pytest.mark.parametrize(("card", "spec"), [(V1, "v1"), (v2(), "v2"), (v3(), "v3")])
def test_json_cards(tmp_path: Path, card: dict, spec: str) -> None:
    read = read_card(json_card(tmp_path / "mira.json", card))
    assert (read.name, read.description, read.spec) == ("Mira", V1["description"], spec)
    assert read.mes_example == V1["mes_example"]


def test_windows_line_ends_and_a_bom_are_read_as_sillytavern_shows_them(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(v2(description="a\r\nb")).encode())
    assert read_card(path).description == "a\nb"


def test_the_portrait_prompt_is_the_cards_own_or_made_from_name_and_description(
    tmp_path: Path,
) -> None:
    own = v2(extensions={"pipe": {"portrait": "a lighthouse keeper, oil painting"}})
    assert read_card(json_card(tmp_path / "a.json", own)).portrait == (
        "a lighthouse keeper, oil painting"
    )
    made = read_card(json_card(tmp_path / "b.json", v2(description="Tall. Kind.")))
    assert made.portrait == "portrait of Mira, Tall, soft light"


BAD = {
    "no chunk": (png_bytes(("tEXt", "Comment", "just a picture")), "no 'chara' or 'ccv3'"),
    "bad base64": (png_bytes(("tEXt", "chara", "abc")), "not valid base64"),
    "not json": (png_bytes(("tEXt", "chara", b64("{name: Mira"))), "not valid JSON"),
    "not utf-8": (png_bytes(("tEXt", "chara", "/////w==")), "not UTF-8"),
    "a list": (b"[1, 2, 3]", "JSON is not an object"),
    "no name": (json.dumps({"description": "x"}).encode(), "no 'name'"),
    "empty name": (json.dumps({"name": "  "}).encode(), "'name' is empty"),
    "two-line name": (json.dumps({"name": "a\nb"}).encode(), "not a name"),
    "unknown spec": (json.dumps({"spec": "tavern_v9", "data": V1}).encode(), "unknown spec"),
    "v2 without data": (json.dumps({"spec": "chara_card_v2"}).encode(), "no 'name'"),
    "data not object": (json.dumps({"spec": "chara_card_v2", "data": []}).encode(), "JSON list"),
    "number field": (json.dumps(v2(personality=7)).encode(), "'personality' is a JSON int"),
    "list field": (json.dumps(v2(description=["a"])).encode(), "'description' is a JSON list"),
    "huge field": (json.dumps(v2(description="x" * 100_001)).encode(), "over 100,000"),
    "deep json": (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    "broken png": (png_bytes(("tEXt", "chara", b64(V1)))[:60], "not a readable PNG card"),
    "empty file": (b"", "not valid JSON"),
    "bad portrait": (json.dumps(v2(extensions={"pipe": {"portrait": 3}})).encode(), "portrait"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_card_is_one_line_naming_the_file(tmp_path: Path, name: str) -> None:
    data, words = BAD[name]
    path = tmp_path / "bad card.png"
    path.write_bytes(data)
    with pytest.raises(BadCard) as caught:
        read_card(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message
    assert "\n" not in message and len(message) < 300
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


def test_a_missing_file_and_a_huge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadCard, match="cannot read the card"):
        read_card(tmp_path / "nope.png")
    monkeypatch.setattr(cards, "MAX_FILE", 1000)
    path = json_card(tmp_path / "big.json", v2(description="x" * 2000))
    with pytest.raises(BadCard, match=r"big\.json: over"):
        read_card(path)
