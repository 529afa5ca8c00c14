"""Personas: a SillyTavern character card as the voice of any text step, and the user's own
persona filling `{{user}}`. `load()` finds and reads them (cards.py, png_text.py, user.py,
find.py) and renders what reaches the model (render.py) into a `Persona`."""

from pipeline.personas.cards import Card, read_card
from pipeline.personas.find import LIBRARIAN, Found, found, load
from pipeline.personas.persona import BadCard, Persona

__all__ = ["LIBRARIAN", "BadCard", "Card", "Found", "Persona", "found", "load", "read_card"]
