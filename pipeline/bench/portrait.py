"""The prompt of "/sd you": the character's portrait as its card describes it (the card's
own portrait prompt where it carries one), else one made from its name."""

from __future__ import annotations

from pipeline.personas.persona import Persona


def portrait_prompt(persona: Persona) -> str:
    own = getattr(persona, "portrait", "")  # a card's portrait prompt, where cards carry one
    if isinstance(own, str) and own.strip():
        return own.strip()
    return (
        f"portrait of {persona.name}, head and shoulders, warm light, detailed face,"
        " painterly illustration"
    )
