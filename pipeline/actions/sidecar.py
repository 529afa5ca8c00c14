"""Write each answer to a text file beside its input, named by the recipe's `then.sidecar`."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.actions.base import Action, write_output
from pipeline.actions.keys import NAME_FIELDS, Needs, template_key
from pipeline.results import ActionError, Result
from pipeline.templates import Template, TemplateError


@dataclass(frozen=True)
class SidecarKeys:
    sidecar: Template = template_key("{path}.answer.txt", NAME_FIELDS)  # the file's name


class Sidecar(Action):
    """Write the answer to a file beside the input, named by the recipe's `then.sidecar`."""

    name = "sidecar"
    then_keys = SidecarKeys
    needs = Needs(answer="text")

    def target(self, path: str) -> str:
        folder, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        fields = {
            "path": path,
            "name": name,
            "stem": stem,
            "ext": ext,
            "dir": folder,
            "recipe": self.recipe.name,
        }
        try:
            rendered = self.recipe.then.get(SidecarKeys).sidecar.render(fields)
        except TemplateError as e:
            raise ActionError(f"then.sidecar: {e}") from None
        target = os.path.normpath(rendered)
        # abspath normalises (and asks the OS for the working folder if relative): two a file.
        absolute_target, absolute_path = os.path.abspath(target), os.path.abspath(path)
        if os.path.dirname(absolute_target) != os.path.dirname(absolute_path):
            raise ActionError(f"sidecar name {rendered!r} is not beside {path}")
        if absolute_target == absolute_path:
            raise ActionError("sidecar name is the input file itself")
        return target

    def content(self, answer: str) -> str:
        return answer.rstrip("\n") + "\n"

    def apply(self, result: Result) -> None:
        if result.text is not None and result.is_file:
            try:
                target = self.target(result.path)
                if self.dry_run:
                    self.out.write(self.shown.name(f"{result.path} -> {target}") + "\n")
                else:
                    write_output(self.store, target, self.content(result.text).encode())
            except (ActionError, OSError) as e:
                result.status, result.error = "failed", f"sidecar: {e}"
        if self.as_json or not result.is_file:
            self.emit(result)
