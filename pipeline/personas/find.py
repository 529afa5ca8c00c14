"""Finding cards and user personas by path or by name. A name is looked up without case, by
file stem first and then by the card's own name, in: pipe's config folder (`personas/`),
SillyTavern's folders when the user points pipe at them, and pipe's built-in cards, in
that order (a user's card of the same name replaces the built-in, as user recipes do)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline import paths
from pipeline.personas.cards import Card, read_card
from pipeline.personas.persona import BadCard, Persona
from pipeline.personas.render import render, substitute
from pipeline.personas.user import UserPersona, from_settings, from_text

BUILTIN = Path(__file__).resolve().parent / "cards"
LIBRARIAN = BUILTIN / "librarian.json"  # pipe's own card: `pipe bench`'s character
CARD_SUFFIXES = (".png", ".json")
LIST_HINT = "'pipe personas' lists them"


@dataclass(frozen=True)
class Found:
    """One card or user persona, for `pipe personas`; `problem` says why a file that looked
    like one could not be read (its name is then the file's stem)."""

    kind: str  # "card" or "user"
    name: str
    first_line: str
    source: str
    problem: str = ""


def user_dir() -> Path:
    """The user's own cards (.png, .json) and personas (.txt)."""
    return paths.config_dir() / "personas"


def load(
    card: str | Path, user: str | Path | None = None, sillytavern: Path | None = None
) -> Persona:
    """The persona `card` (a path or a name) makes, speaking to `user` (a path, a name, or
    None for SillyTavern's default "User")."""
    user_persona = find_user(str(user), sillytavern) if user else None
    found_card = find_card(str(card), sillytavern)
    persona = render(found_card, user_persona)
    source = Path(found_card.source)
    if source.parent == BUILTIN:  # messages say "built-in librarian", not a site-packages path
        persona = dataclasses.replace(persona, source=f"built-in {source.stem}")
    return persona


def card_folders(sillytavern: Path | None) -> list[tuple[str, Path]]:
    """(what, folder) where cards are looked for, in the order a name is looked up."""
    places = [("pipe's config", user_dir())]
    places += [("SillyTavern", folder) for folder in _sillytavern(sillytavern, "characters")]
    return [*places, ("built-in", BUILTIN)]


def _sillytavern(root: Path | None, name: str) -> list[Path]:
    """`data/*/NAME` under SillyTavern's folder (`public/NAME` in its older versions); the
    user may also point at `data/` or at `data/default-user/` itself."""
    if root is None:
        return []
    root = root.expanduser()
    found = [*sorted(root.glob(f"data/*/{name}")), *sorted(root.glob(f"*/{name}")), root / name]
    unique = dict.fromkeys(p for p in found if p.exists())
    return list(unique)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    except OSError:
        return []  # a folder that is not there (yet) holds nothing


def _is_path(text: str) -> bool:
    suffix = Path(text).suffix.lower()
    return "/" in text or "\\" in text or text.startswith("~") or suffix in (*CARD_SUFFIXES, ".txt")


def find_card(card: str, sillytavern: Path | None = None) -> Card:
    path = Path(card).expanduser()
    if path.is_file():
        return read_card(path)
    if _is_path(card):
        raise BadCard(f"{card}: no such card file")
    places = card_folders(sillytavern)
    wanted = card.casefold()
    for _, folder in places:
        for file in _files(folder, CARD_SUFFIXES):
            if file.stem.casefold() == wanted:
                return read_card(file)
    for _, folder in places:
        for file in _files(folder, CARD_SUFFIXES):
            try:
                found = read_card(file)
            except BadCard:
                continue  # `pipe personas` says why; a search passes it by
            if found.name.casefold() == wanted:
                return found
    where = ", ".join(f"{what} ({folder})" for what, folder in places)
    raise BadCard(f"no card named {card!r} in {where}; {LIST_HINT}")


def _users(sillytavern: Path | None) -> Iterator[UserPersona | Found]:
    """Every user persona (text files, then SillyTavern's), or a Found for a bad file."""
    for file in _files(user_dir(), (".txt",)):
        try:
            yield from_text(file)
        except BadCard as e:
            yield Found("user", file.stem, "", str(file), problem=str(e))
    for settings in _sillytavern(sillytavern, "settings.json"):
        try:
            yield from from_settings(settings)
        except BadCard as e:
            yield Found("user", settings.parent.name, "", str(settings), problem=str(e))


def find_user(user: str, sillytavern: Path | None = None) -> UserPersona:
    path = Path(user).expanduser()
    if path.is_file():
        return from_text(path)
    if _is_path(user):
        raise BadCard(f"{user}: no such persona file")
    wanted = user.casefold()
    for persona in _users(sillytavern):
        if isinstance(persona, UserPersona) and persona.name.casefold() == wanted:
            return persona
    where = [f"pipe's config ({user_dir()})"]
    where += [f"SillyTavern ({p})" for p in _sillytavern(sillytavern, "settings.json")]
    raise BadCard(f"no user persona named {user!r} in {', '.join(where)}; {LIST_HINT}")


def found(sillytavern: Path | None = None) -> list[Found]:
    """Every card and user persona pipe can see, cards first; unreadable files are listed
    with their problem rather than failing the list."""
    listed: list[Found] = []
    for _, folder in card_folders(sillytavern):
        for file in _files(folder, CARD_SUFFIXES):
            try:
                card = read_card(file)
            except BadCard as e:
                listed.append(Found("card", file.stem, "", str(file), problem=str(e)))
                continue
            first = substitute(_first_line(card.description), card.name, "User")
            listed.append(Found("card", card.name, first, str(file)))
    for persona in _users(sillytavern):
        if isinstance(persona, Found):
            listed.append(persona)
        else:
            first = _first_line(persona.description)
            listed.append(Found("user", persona.name, first, persona.source))
    return listed


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line[:300]
