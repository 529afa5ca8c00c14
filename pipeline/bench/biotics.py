"""The "biotics" test as the seed's chart measures it: the persona is given a paragraph about
antibiotics and asked to explain it in one sentence, in the backend's own chat format.

Every request's system text starts with a line of its own (the bench's nonce and the run's
number), so no request's prompt is a prefix of an earlier one: llama.cpp's prompt cache and
koboldcpp's fast-forward reuse a matching prefix, which would make every repeat after the
first look faster than the box is.
"""

from __future__ import annotations

from pipeline.backends import Request
from pipeline.personas.persona import Persona

# Written for pipe: 266 tokens by SmolLM2's tokenizer; with the librarian card, the chat
# format and the question, the prompt is 1,129 tokens (the seed: 1,125).
PARAGRAPH = (
    "Antibiotics are medicines that kill bacteria or stop them multiplying while leaving"
    " human cells largely unharmed, because they aim at parts that bacteria have and our"
    " cells lack or build differently. Penicillin and its relatives block the enzymes that"
    " build the bacterial cell wall, so a growing cell bursts. Tetracyclines and macrolides"
    " bind the bacterial ribosome, whose shape differs from ours, and stop the making of"
    " proteins. Fluoroquinolones jam the enzymes that untangle DNA as it is copied, and"
    " sulfonamides starve bacteria of folate, a vitamin they must make for themselves."
    " Antibiotics do nothing against viruses, which have none of these targets. Resistance"
    " arises by natural selection: among billions of bacteria a few carry a mutation, or a"
    " gene taken from another microbe, that lets them pump the drug out, break it down, or"
    " change its target. Each course of treatment kills the susceptible cells and leaves"
    " these survivors to multiply, and resistance genes spread between species on plasmids."
    " Needless prescriptions and unfinished courses give resistant strains more chances."
    " Broad-spectrum drugs also kill the harmless bacteria of the gut and skin, and their loss"
    " can let others, such as Clostridioides difficile, take over; so doctors match the drug"
    " to the infection where a test allows, and hospitals track which strains resist which"
    " drugs."
)
QUESTION = "Explain the above in one sentence."
# One sentence is 20-50 tokens; the cap keeps a model that rambles from timing its ramble.
MAX_TOKENS = 64
TEMPERATURE = 0.0


def request(persona: Persona, run: int, nonce: str) -> Request:
    """The request of run number `run` (0: the warm-up) of the bench named by `nonce`."""
    first_line = f"Bench {nonce}, run {run}."
    system = "\n".join([first_line, persona.wrap_system("")])
    prompt = persona.wrap_prompt(f"{PARAGRAPH}\n\n{QUESTION}")
    return Request(
        prompt=prompt,
        system=system,
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
        format="auto",
    )


def settings() -> dict[str, object]:
    """What shaped a biotics figure besides the persona and the server, for the store."""
    return {"max_tokens": MAX_TOKENS, "temperature": TEMPERATURE, "format": "auto"}
