"""What a persona adds to each text step's request: a system text before the recipe's own
(which stays, so the persona changes the voice, not the job) and the card's post-history
instructions after the item's text."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UsageError


class BadCard(UsageError):
    """A card or user persona that cannot be used; the message names the file: exit 2."""


@dataclass(frozen=True)
class Persona:
    name: str  # the character's name, `{{char}}`
    user: str  # the user's name, `{{user}}` ("User" unless a user persona is given)
    system: str  # macros already substituted
    after: str = ""  # post_history_instructions, macros substituted; "" if none
    source: str = ""  # where it was read from, for messages: a path or "built-in librarian"
    portrait: str = ""  # a Stable Diffusion prompt for the character's picture (`pipe bench`)

    def key(self) -> dict[str, str]:
        """What the persona changes in a request (for cache fingerprints): a changed card
        redoes the work, the same card found elsewhere does not."""
        return {"persona": self.system, "after": self.after}

    def wrap_system(self, system: str) -> str:
        """The persona's system text, then the recipe's own."""
        return "\n\n".join(part for part in (self.system, system) if part)

    def wrap_prompt(self, prompt: str) -> str:
        """The step's prompt (with the item's text), then the post-history instructions."""
        return "\n\n".join(part for part in (prompt, self.after) if part)
