"""`kind = "keywords"`: a vision step whose answer is a list of keywords for the photo.

The model is held to a grammar (`keyword_grammar`) that lets it say only `min_keywords` to
`max_keywords` comma-separated keywords of one to three words each; servers that ignore a
grammar (many OpenAI-compatible ones) are asked all the same, as the `grammar` key of other
steps is. Whatever comes back is normalised (`pipeline.keywords.normalise`) before it is
cached and shown, so a model that ignored the grammar still gives the list pipe keeps:
"dog, beach, Eiffel Tower".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline import keywords
from pipeline.backends import Rejected
from pipeline.steps.base import StepKind
from pipeline.steps.table import Key
from pipeline.steps.text import KEYS as TEXT_KEYS
from pipeline.steps.vision import VisionStep

if TYPE_CHECKING:
    from pipeline.answers import Answer
    from pipeline.engine.call import StepCall

MIN_KEYWORDS = 5
MAX_KEYWORDS = 12
COUNT = (1, 50)  # beyond ~50 a photo's "keywords" are its description in pieces

# A keyword's character: an ASCII letter or digit, or any character past ASCII (letters of
# every script; what is not a letter, mark or digit there is dropped by the normaliser).
# A word is such characters with inner hyphens; a keyword one to three words.
_RULES = (
    'keyword ::= word (" " word){0,2}\n'
    'word ::= char+ ("-" char+){0,2}\n'
    "char ::= [a-zA-Z0-9] | [^\\x00-\\x7F]"
)


def keyword_grammar(low: int, high: int) -> str:
    """GBNF for `low` to `high` keywords joined by ", " (`keywords.SEPARATOR`), nothing
    else; a leading space is allowed, as many tokenizers start a word with one. A `low`
    past `high` is read as `high`."""
    low = max(1, min(low, high))
    more = "" if high == 1 else f' (", " keyword){{{low - 1},{high - 1}}}'
    return f'root ::= " "? keyword{more}\n{_RULES}'


def _case(value: str) -> str:
    if value in keywords.CASES:
        return ""
    return f"expected one of {', '.join(keywords.CASES)}, got {value!r}"


# The vision step's keys, but its grammar is the step's own: a recipe sets the counts.
KEYS = {
    **{name: key for name, key in TEXT_KEYS.items() if name != "grammar"},
    "min_keywords": Key(int, MIN_KEYWORDS, COUNT, hint="1 to 50 keywords"),
    "max_keywords": Key(int, MAX_KEYWORDS, COUNT, hint="1 to 50 keywords"),
    "case": Key(str, "auto", check=_case),
}


@dataclass(frozen=True)
class KeywordsStep(VisionStep):
    min_keywords: int = MIN_KEYWORDS
    max_keywords: int = MAX_KEYWORDS
    case: str = "auto"  # keywords.normalise: "auto" keeps a proper noun's capitals

    def __post_init__(self) -> None:
        # The grammar follows the counts; a recipe cannot set its own (KEYS has none).
        grammar = keyword_grammar(self.min_keywords, self.max_keywords)
        object.__setattr__(self, "grammar", grammar)

    def key(self) -> dict[str, Any]:
        # The grammar (so both counts) is in the text step's key; the answer cached is the
        # normalised one, so what shapes the normalising is in it too.
        return {**super().key(), "max_keywords": self.max_keywords, "case": self.case}

    def answer(self, call: StepCall) -> Answer:
        found = keywords.normalise(call.run.asker.ask(self, call), self.max_keywords, self.case)
        if not found:
            raise Rejected("the model's answer held no keywords")
        return keywords.join(found)


KIND = StepKind(
    "keywords", KeywordsStep, KEYS, abilities=frozenset({"text", "vision"}), reads_image=True
)
