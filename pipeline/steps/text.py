"""`kind = "text"` (the default): the model's answer to a prompt built from the item's text
or name and earlier answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipeline.backends.chat_formats import FORMATS
from pipeline.hints import language
from pipeline.hints.system import compile_system
from pipeline.steps.base import Step, StepKind
from pipeline.steps.table import Key
from pipeline.templates import Template

if TYPE_CHECKING:
    from pipeline.answers import Answer
    from pipeline.engine.call import StepCall
    from pipeline.personas.persona import Persona

# Sampling values every kind of server takes (OpenAI-compatible ones refuse temperature > 2);
# max_tokens past any model's context is a typo, and some servers allocate for it.
TEMPERATURE = (0.0, 2.0)
MAX_TOKENS = (1, 1_000_000)
REPEAT_PENALTY = (0.5, 2.0)
IMAGE_SIZE = (64, 4096)


def _strings(value: list[Any]) -> str:
    return "" if all(isinstance(s, str) for s in value) else "expected a list of strings"


def _format(value: str) -> str:
    if value == "auto" or value in FORMATS:
        return ""
    return f"expected auto or one of {', '.join(FORMATS)}, got {value!r}"


# In the order they are checked (the first wrong one is the error).
KEYS = {
    "max_tokens": Key(int, 256, MAX_TOKENS),
    "temperature": Key((int, float), 0.0, TEMPERATURE, convert=float),
    "repeat_penalty": Key(
        (int, float), 1.0, REPEAT_PENALTY, hint="0.5 to 2.0 (1.0 is off)", convert=float
    ),
    "stop": Key(list, [], check=_strings, convert=tuple),
    "image_size": Key(int, 1024, IMAGE_SIZE, hint="64 to 4096 pixels"),
    "format": Key(str, "auto", check=_format),
    "system": Key(str, ""),
    "grammar": Key(str, ""),
    "language": Key(str, "", check=language.problem),  # "de", "German": answers in it
}


@dataclass(frozen=True)
class TextStep(Step):
    system: str = ""
    max_tokens: int = 256
    temperature: float = 0.0
    repeat_penalty: float = 1.0  # 1.0 is off; small models loop without ~1.1
    stop: tuple[str, ...] = ()
    grammar: str = ""
    format: str = "auto"
    image_size: int = 1024  # long side of the image sent to a vision model
    persona: Persona | None = None  # the voice (a character card), set by Recipe.with_persona
    language: str = ""  # a code or a name: "Answer in German." ends the prompt

    def key(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "system": self.system,
            "prompt": self.prompt.source,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            # Only when set, so answers cached before this option existed stay valid.
            **({"repeat_penalty": self.repeat_penalty} if self.repeat_penalty != 1.0 else {}),
            "stop": list(self.stop),
            "grammar": self.grammar,
            "format": self.format,
            # Only when set, so answers cached without a persona stay valid.
            **({"persona": self.persona.key()} if self.persona else {}),
            **({"language": self.language} if self.language else {}),
        }

    @cached_property
    def system_template(self) -> Template:
        """`system` with the item's fields (`{folder}` ...) it names; the rest is text."""
        return compile_system(self.system)

    def templates(self) -> tuple[Template, ...]:
        return (self.prompt, self.system_template)

    def system_text(self, values: Mapping[str, Any] | None = None) -> str:
        """The system text sent: the persona's, then the step's own (its fields filled in
        from `values`; as written without them)."""
        own = self.system
        if values is not None and self.system_template.fields:
            own = self.system_template.render(values)
        return self.persona.wrap_system(own) if self.persona else own

    def prompt_text(self, rendered: str) -> str:
        """The user text sent: the rendered prompt, the language's instruction, then the
        persona's closing words."""
        if self.language:
            rendered = f"{rendered}\n\n{language.instruction(self.language)}"
        return self.persona.wrap_prompt(rendered) if self.persona else rendered

    def grammar_text(self) -> str:
        """The grammar sent: with a language, `[a-z]` takes every script's letters."""
        return language.widen_letters(self.grammar) if self.language else self.grammar

    def images(self, call: StepCall) -> tuple[bytes, ...]:
        """The images sent with the prompt: none."""
        return ()

    def answer(self, call: StepCall) -> Answer:
        return call.run.asker.ask(self, call)


KIND = StepKind("text", TextStep, KEYS, abilities=frozenset({"text"}))
