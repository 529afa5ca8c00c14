"""An action made for the tests, as a new action is made: this one module and one line in
`pipeline.actions.ACTIONS` (the tests add it with monkeypatch). It prints each answer under
a banner, upper-cased if `then.shout = "yes"`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.actions import Action
from pipeline.actions.keys import NAME_FIELDS, Needs, choice_key, template_key
from pipeline.results import Result
from pipeline.templates import Template


@dataclass(frozen=True)
class ShoutKeys:
    shout: str = choice_key("no", ("no", "yes"))
    banner: Template = template_key("== {name} ==", NAME_FIELDS)


class Shout(Action):
    """Prints each answer under a banner, upper-cased if `then.shout = "yes"`."""

    name = "shout"
    then_keys = ShoutKeys
    needs = Needs(answer="text", photos=True)

    def apply(self, result: Result) -> None:
        keys = self.recipe.then.get(ShoutKeys)
        text = result.text or ""
        banner = keys.banner.render({"name": Path(result.path).name})
        self.out.write(f"{banner}\n{text.upper() if keys.shout == 'yes' else text}\n")
