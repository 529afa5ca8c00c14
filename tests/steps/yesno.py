"""A step kind made for the tests, as a new kind is made: this one module and one entry in
`pipeline.steps.KINDS` (the tests add it with monkeypatch). `kind = "yesno"` asks a text
model held to a grammar that lets it say only yes or no."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.steps import StepKind
from pipeline.steps.text import KEYS as TEXT_KEYS
from pipeline.steps.text import TextStep

YES_NO = 'root ::= "yes" | "no"'
KEYS = {name: key for name, key in TEXT_KEYS.items() if name != "grammar"}


@dataclass(frozen=True)
class YesNoStep(TextStep):
    grammar: str = YES_NO


KIND = StepKind("yesno", YesNoStep, KEYS, abilities=frozenset({"text", "grammar"}))
