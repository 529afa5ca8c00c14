"""What a card says to the model, as SillyTavern says it with its Default context template:

    {{system}}                      the card's system_prompt, if any
    {{description}}
    {{char}}'s personality: {{personality}}
    Scenario: {{scenario}}
    {{persona}}                     the user persona's description
    ***                             the Default template's example separator,
    <one dialogue example>          before each block of mes_example split at <START>
    ***
    <the next example>

each line only when its field is set (the template's `{{#if}}`s), fields trimmed and their
macros substituted (`{{char}}`, `{{user}}`, `<BOT>`, `<USER>`, `<CHAR>`, without case, as
SillyTavern's `evaluateMacros`). In SillyTavern the card's system_prompt fills the
template's `{{system}}` slot: it replaces the main prompt, not the card's description, and
its `{{original}}` stands for that main prompt. pipe's main prompt is the recipe's own
system text, which follows the persona's anyway, so `{{original}}` becomes nothing here.
The post_history_instructions go after the item's text (`Persona.after`)."""

from __future__ import annotations

import re

from pipeline.personas.cards import Card
from pipeline.personas.persona import Persona
from pipeline.personas.user import DEFAULT_NAME, UserPersona

EXAMPLE_SEPARATOR = "***"  # Default.json's example_separator
_START = re.compile("<START>", re.IGNORECASE)
_MACRO = re.compile(
    r"\{\{(char|user|original|newline|noop)\}\}|<(bot|user|char)>|\{\{//[\s\S]*?\}\}",
    re.IGNORECASE,
)
_TRIM = re.compile(r"(?:\r?\n)*\{\{trim\}\}(?:\r?\n)*", re.IGNORECASE)


def render(card: Card, user: UserPersona | None = None) -> Persona:
    """The persona a card and (optionally) the user's persona make."""
    user_name = user.name if user else DEFAULT_NAME

    def sub(text: str) -> str:
        return substitute(text.strip(), card.name, user_name).strip()

    persona = sub(user.description) if user and user.in_prompt else ""
    personality = sub(card.personality)
    scenario = sub(card.scenario)
    story = [
        sub(card.system_prompt),
        sub(card.description),
        f"{card.name}'s personality: {personality}" if personality else "",
        f"Scenario: {scenario}" if scenario else "",
        persona,
    ]
    blocks = [f"{EXAMPLE_SEPARATOR}\n{block}" for block in examples(sub(card.mes_example))]
    system = "\n".join(part for part in story if part)
    system = "\n".join(part for part in (system, *blocks) if part)
    return Persona(
        name=card.name,
        user=user_name,
        system=system,
        after=sub(card.post_history_instructions),
        source=card.source,
        portrait=sub(card.portrait),
    )


def examples(mes_example: str) -> list[str]:
    """The dialogue examples, split at `<START>` as SillyTavern's parseMesExamples does
    (text before the first `<START>` is an example of its own); empty blocks dropped."""
    text = mes_example.strip()
    if not text:
        return []
    if not text.startswith("<START>"):
        text = "<START>\n" + text
    return [block.strip() for block in _START.split(text)[1:] if block.strip()]


def substitute(text: str, char: str, user: str) -> str:
    """SillyTavern's macros a card uses, in one pass (a name holding `{{user}}` stays as
    it is). Unknown macros stay, as SillyTavern leaves them."""

    def one(match: re.Match[str]) -> str:
        word = (match.group(1) or match.group(2) or "").lower()
        if word in ("char", "bot"):
            return char
        if word == "user":
            return user
        if word == "newline":
            return "\n"
        return ""  # {{original}}, {{noop}}, {{// comment}}

    return _TRIM.sub("", _MACRO.sub(one, text))
