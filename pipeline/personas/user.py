"""The user's own persona, which fills `{{user}}` and adds its description where SillyTavern
puts `{{persona}}`. SillyTavern keeps personas in `data/<user>/settings.json`:
`power_user.personas` maps an avatar file to a name, and `power_user.persona_descriptions`
maps the same avatar to `{description, position, depth, role, ...}`. A plain text file is
a persona too: its stem is the name, its text the description."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.personas.cards import MAX_FIELD, read_bounded
from pipeline.personas.persona import BadCard

DEFAULT_NAME = "User"  # SillyTavern's name1 before the user picks one
MAX_SETTINGS = 64 << 20  # settings.json grows with a user's presets; still bounded
NONE_POSITION = 9  # persona_description_positions.NONE: the description goes nowhere


@dataclass(frozen=True)
class UserPersona:
    name: str
    description: str = ""
    source: str = ""
    in_prompt: bool = True  # False: SillyTavern's position NONE, the description goes nowhere

    @property
    def first_line(self) -> str:
        return next((line for line in self.description.splitlines() if line.strip()), "")


def from_text(path: Path) -> UserPersona:
    """A persona written as a text file: `me.txt` is "me", described by its text."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FIELD * 4 + 1)
    except OSError as e:
        raise BadCard(f"{path}: cannot read the persona: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadCard(f"{path}: the persona is not UTF-8 text (byte {e.start})") from None
    if len(text) > MAX_FIELD:
        raise BadCard(f"{path}: the persona is over {MAX_FIELD:,} characters")
    text = text.replace("\r\n", "\n").strip()
    return UserPersona(name=path.stem, description=text, source=str(path))


def from_settings(path: Path) -> list[UserPersona]:
    """Every persona in a SillyTavern settings.json, in its order."""
    power_user = _power_user(path)
    names = power_user.get("personas")
    descriptions = power_user.get("persona_descriptions")
    if names is None:
        return []
    if not isinstance(names, dict):
        raise BadCard(f"{path}: 'power_user.personas' is not an object of avatar: name")
    if not isinstance(descriptions, dict):
        descriptions = {}
    found = []
    for avatar, name in names.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            continue  # SillyTavern would show no such persona either
        found.append(
            UserPersona(
                name=name.strip(),
                description=_description(descriptions.get(avatar), path, name),
                source=f"{path} ({avatar})",
                in_prompt=_in_prompt(descriptions.get(avatar)),
            )
        )
    return found


def _power_user(path: Path) -> dict[str, Any]:
    what = "SillyTavern's settings"
    raw = read_bounded(path, MAX_SETTINGS, what, "not SillyTavern's settings.json")
    try:
        settings = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        raise BadCard(f"{path}: not valid JSON; not SillyTavern's settings.json") from None
    power_user = settings.get("power_user") if isinstance(settings, dict) else None
    if not isinstance(power_user, dict):
        raise BadCard(f"{path}: no 'power_user' object; not SillyTavern's settings.json")
    return power_user


def _in_prompt(entry: Any) -> bool:
    """Only position NONE keeps the description out. Its other positions (an author's note,
    a chat depth) all land before the one exchange pipe has: where `{{persona}}` is."""
    return not (isinstance(entry, dict) and entry.get("position") == NONE_POSITION)


def _description(entry: Any, path: Path, name: str) -> str:
    if not isinstance(entry, dict):
        return ""
    description = entry.get("description")
    if not isinstance(description, str):
        return ""
    if len(description) > MAX_FIELD:
        raise BadCard(f"{path}: the persona {name!r} is over {MAX_FIELD:,} characters")
    return description.replace("\r\n", "\n").strip()
