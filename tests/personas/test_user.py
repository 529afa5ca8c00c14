"""The user's persona: SillyTavern's settings.json (`power_user.personas` avatar -> name,
`persona_descriptions` avatar -> {description, position, ...}) or a plain text file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.personas.persona import BadCard
from pipeline.personas.user import UserPersona, from_settings, from_text
from tests.personas.make import st_settings


def test_personas_from_a_sillytavern_settings_file(tmp_path: Path) -> None:
    path = st_settings(
        tmp_path / "settings.json",
        {"1700000000-sam.png": "Sam", "user-default.png": "User", "ghost.png": 3},
        {
            "1700000000-sam.png": {
                "description": "Sam is a sailor.\r\nHe hates fog.",
                "position": 0,
                "depth": 2,
                "role": 0,
            },
            "user-default.png": {"description": "Quiet.", "position": 9},
        },
    )
    assert from_settings(path) == [
        UserPersona("Sam", "Sam is a sailor.\nHe hates fog.", f"{path} (1700000000-sam.png)"),
        UserPersona("User", "Quiet.", f"{path} (user-default.png)", in_prompt=False),
    ]


def test_settings_without_personas_have_none(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"power_user": {}}')
    assert from_settings(path) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "not valid JSON"),
        ("[]", "no 'power_user'"),
        ('{"power_user": {"personas": ["Sam"]}}', "not an object"),
    ],
)
def test_a_settings_file_that_is_not_sillytavern_s(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(BadCard, match=words) as caught:
        from_settings(path)
    assert str(caught.value).startswith(str(path))


def test_a_text_file_is_a_persona_named_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "me.txt"
    path.write_text("\ufeffA retired harbour pilot.\n")
    assert from_text(path) == UserPersona("me", "A retired harbour pilot.", str(path))
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(BadCard, match="not UTF-8"):
        from_text(path)
