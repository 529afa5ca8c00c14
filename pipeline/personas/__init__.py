"""Personas: a SillyTavern character card as the voice of any text step, and the user's own
persona filling `{{user}}`. `load()` finds and reads them (cards.py, png_text.py, user.py,
find.py) and renders what reaches the model (render.py) into a `Persona`."""
