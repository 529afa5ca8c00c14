"""The `rename` action: collects the answers during the run, then at the end plans every new
name at once (collisions need the whole batch) and prints the plan (dry run) or journals
and applies it.

The moves (and the store under them) are imported when the renames are planned, not with
this module: loading any recipe reads this action's keys."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.actions.base import Action, ActionContext
from pipeline.actions.keys import Needs, template_key
from pipeline.renaming.names import UnusableName, safe_filename, slug, words
from pipeline.results import Result
from pipeline.templates import Template, TemplateError

if TYPE_CHECKING:
    from pipeline.renaming.moves import Outcome

# A new name may use the answers (each step's by its name), EXIF and a counter.
RENAME_FIELDS = frozenset({"name", "stem", "ext", "answer", "exif", "counter"})
# Filters that keep the letters of every script: an answer they keep is usable.
_EVERY_SCRIPT = ("words", "words_")


@dataclass(frozen=True)
class RenameKeys:
    name: Template = template_key("{answer|slug}{ext}", RENAME_FIELDS, answers=True)


class RenameAction(Action):
    """Collects answers during the run; at the end plans every new name at once (collisions
        need the whole batch), then prints the plan (dry run) or journals and applies it.

    The journal and the moves (and the store under them) are imported when the action is
    opened, not with this module: loading any recipe reads this action's keys."""

    name = "rename"
    choosable = False  # the recipe must be made for it: its answers are names
    then_keys = RenameKeys
    needs = Needs(answer="text")

    def __init__(self, context: ActionContext) -> None:
        super().__init__(context)
        self.journal = self.store.journal
        self.collected: list[Result] = []

    def apply(self, result: Result) -> None:
        if result.status in ("failed", "skipped") or result.text is None or not result.is_file:
            if self.as_json:
                self.emit(result)
            return
        result.deferred = True
        self.collected.append(result)

    def close(self, run_id: int) -> None:
        wanted: list[tuple[Path, str]] = []
        planned: dict[str, Result] = {}
        for counter, result in enumerate(self.collected, 1):
            if self.journal.renamed_by_pipe(result.path):
                result.status, result.deferred = "done", False
                result.notes.append("already renamed by pipe")
                continue
            try:
                wanted.append((Path(result.path), self.new_name(result, counter)))
            except (UnusableName, TemplateError) as e:
                result.status, result.error, result.deferred = "failed", str(e), False
                result.forget_answer = True  # so a re-run asks the model again
                continue
            planned[str(Path(result.path))] = result
        from pipeline.renaming.moves import Outcome
        from pipeline.renaming.moves import apply as apply_moves
        from pipeline.renaming.plan import plan_moves

        in_batch = {str(Path(r.path)) for r in self.collected}
        moves = plan_moves(wanted, in_batch)
        moving = {m.old for m in moves}
        for result in self.collected:
            if result.deferred and str(Path(result.path)) not in moving:
                result.status, result.deferred = "done", False
                result.notes.append("already named")
        if self.dry_run:
            outcomes = [Outcome(m.old, m.new, "planned", companion=m.companion) for m in moves]
        else:
            outcomes = apply_moves(self.store, run_id, moves)
        for outcome in outcomes:
            self._show(outcome)
            result = planned.get(outcome.old)
            if result is None or outcome.companion:
                continue
            result.deferred = False
            if outcome.state == "applied":
                result.status, result.new_path = "done", outcome.new
            elif outcome.state == "planned":
                result.status, result.new_path = "planned", outcome.new
            else:
                result.status, result.error = "failed", f"not renamed: {outcome.reason}"
        if self.as_json:
            for result in self.collected:
                self.emit(result)

    def new_name(self, result: Result, counter: int) -> str:
        """The file's new name from the recipe's template; UnusableName if nothing is left."""
        fields = dict(result.fields)
        answer = result.text or ""
        template = self.recipe.then.get(RenameKeys).name
        keeps_scripts = any(f in _EVERY_SCRIPT for part in template.fields for f in part.filters)
        if not (words(answer) if keeps_scripts else slug(answer)):
            raise UnusableName(
                f"the model's answer gives nothing usable for a name: {answer!r:.60}"
            )
        name = os.path.basename(result.path)
        stem, ext = os.path.splitext(name)
        real_ext = str(fields.get("ext") or ext)
        fields.update(answer=answer, name=name, stem=stem, ext=real_ext, counter=counter)
        rendered = template.render(fields)
        new_stem, rendered_ext = os.path.splitext(rendered)
        if rendered_ext.lower() != real_ext.lower():
            new_stem = rendered  # the template did not end with {ext}: keep all of it
        return safe_filename(new_stem, real_ext)

    def _show(self, outcome: Outcome) -> None:
        if self.as_json:
            return
        mark = {"applied": "", "planned": ""}.get(
            outcome.state, f"  [{outcome.state}: {outcome.reason}]"
        )
        self.out.write(self.shown.name(f"{outcome.old} -> {outcome.new}{mark}") + "\n")
        self.out.flush()
