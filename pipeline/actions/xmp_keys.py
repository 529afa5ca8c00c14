"""What the actions that write pipe's XMP fields (the `xmp` sidecar, and photos' own XMP)
share: their `[then]` keys (what the answer is, and whether keywords also go into a
hierarchy), so a recipe sets them once for either, and `XmpWriter`, their base."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import keywords
from pipeline.actions.base import Action
from pipeline.actions.keys import Needs, choice_key, text_key
from pipeline.media.xmp.fields import XmpFields

FIELDS = ("description", "keywords")


def _hierarchy_problem(value: str) -> str:
    if value and any(not part.strip() for part in value.split("|")):
        return 'expected "" or names separated by "|", e.g. "pipe" or "Places|pipe"'
    return ""


@dataclass(frozen=True)
class XmpKeys:
    # What the answer is: a caption (dc:description) or keywords (dc:subject).
    field: str = choice_key("description", FIELDS)
    # Keywords also into lr:hierarchicalSubject under this parent ("pipe" -> "pipe|dog").
    hierarchy: str = text_key("", _hierarchy_problem)

    def fields(self, answer: str) -> XmpFields:
        """What these keys make of an answer: pipe's fields to write."""
        if self.field == "description":
            return XmpFields(description=answer.strip())
        found = keywords.split(answer)
        parent = "|".join(part.strip() for part in self.hierarchy.split("|") if part.strip())
        return XmpFields(
            keywords=found,
            hierarchical=tuple(f"{parent}|{k}" for k in found) if parent else None,
        )


class XmpWriter(Action):
    """An action that writes pipe's XMP fields for each photo's answer."""

    then_keys = XmpKeys
    needs = Needs(answer="text", photos=True)  # XMP describes a photo

    def fields(self, answer: str) -> XmpFields:
        """What this action writes for an answer."""
        return self.recipe.then.get(XmpKeys).fields(answer)

    def run_id(self) -> int:
        """The run this action writes for (a library caller without one gets its own)."""
        started = self.store.run_table.started
        if started is None:
            started = self.store.start_run(self.recipe.name, self.recipe.origin, [], "", "")
        return started
