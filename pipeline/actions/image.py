"""The `image` action: each picture saved as a PNG beside its input (the recipe's
`then.image`, `{name}.png` by default) or under `--out DIR`, with how it was drawn in the
PNG's A1111 `parameters` text; and, with `--contact-sheet FILE`, one picture of them all.

Never over a file pipe did not write; two items of one run that would share a name get
`-2`, `-3`…; a name never leaves its folder.

Pillow (`media.pictures`, `media.sheets`) is imported when a picture is saved, not with this
module: loading a recipe reads every action's keys, and most recipes draw nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.actions.base import Action, ActionContext, check_replaceable, write_output
from pipeline.actions.keys import NAME_FIELDS, Needs, template_key
from pipeline.answers import Picture
from pipeline.errors import UsageError
from pipeline.renaming.names import slug
from pipeline.results import ActionError, Result
from pipeline.templates import Template, TemplateError


@dataclass(frozen=True)
class ImageKeys:
    # A line of text has no file name: its picture may be named by its text.
    image: Template = template_key("{name}.png", NAME_FIELDS | {"text"})


class ImageAction(Action):
    name = "image"
    choosable = False  # the recipe must draw
    then_keys = ImageKeys
    needs = Needs(answer="picture")
    takes_out_dir = True

    def __init__(self, context: ActionContext) -> None:
        super().__init__(context)
        self.out_dir = context.out_dir
        self.sheet = context.contact_sheet
        self.taken: dict[str, str] = {}  # this run's targets, and whose each is
        self.drawn: dict[str, str] = {}  # picture file -> its input's name, for the sheet
        if self.sheet:  # refused before any drawing, not after the whole run
            from pipeline.media.sheets import FORMATS as SHEET_FORMATS

            if os.path.splitext(self.sheet)[1].lower() not in SHEET_FORMATS:
                raise UsageError(f"--contact-sheet {self.sheet}: must be .jpg, .png or .webp")
            try:
                check_replaceable(self.store, self.sheet)
            except ActionError as e:
                raise UsageError(f"--contact-sheet: {e}") from None

    def apply(self, result: Result) -> None:
        if result.status != "failed" and result.answer is not None:
            try:
                target = self.target(result)
                if isinstance(result.answer, Picture):
                    self.save(result, result.answer, target)
                elif self.dry_run and not self.as_json:  # what would be drawn, from what
                    self.out.write(self.shown.text(f"{result.path} -> {target}: {result.answer}"))
                    self.out.write("\n")
            except (ActionError, OSError) as e:
                result.status, result.error = "failed", f"image: {e}"
        if self.as_json:
            self.emit(result)
        elif result.output:
            self.out.write(self.shown.name(f"{result.path} -> {result.output}") + "\n")
            self.out.flush()

    def target(self, result: Result) -> str:
        """Where the picture goes: rendered from `then.image`, inside its folder."""
        if result.is_file:
            folder, name = os.path.split(result.path)
        else:  # a line of text: named by its words
            folder, name = "", slug(str(result.fields.get("text", ""))[:80]) or "picture"
        folder = self.out_dir or folder or "."
        stem, ext = os.path.splitext(name)
        fields = {
            "path": result.path,
            "name": name,
            "stem": stem,
            "ext": ext,
            "dir": folder,
            "recipe": self.recipe.name,
            "text": str(result.fields.get("text", "")),
        }
        try:
            rendered = os.path.basename(self.recipe.then.get(ImageKeys).image.render(fields))
        except TemplateError as e:
            raise ActionError(f"then.image: {e}") from None
        if not rendered.strip(". "):
            raise ActionError(f"then.image gives no usable name for {result.path}")
        owner = result.path if result.is_file else fields["text"]  # a line: its text
        base, ext = os.path.splitext(os.path.join(folder, rendered))
        target, n = base + ext, 1
        while self.taken.get(target, owner) != owner:  # another item of this run has it
            n += 1
            target = f"{base}-{n}{ext}"
        self.taken[target] = owner
        if os.path.abspath(target) == os.path.abspath(result.path):
            raise ActionError("the picture's name is the input file itself")
        return target

    def save(self, result: Result, picture: Picture, target: str) -> None:
        if self.dry_run:
            return
        finished = result.status == "skipped" and os.path.exists(target)
        if not (finished and self.store.output_digest(os.path.abspath(target))):
            png = picture.png or self.store.picture_png(picture.sha256)
            if png is None:
                raise ActionError("the picture is no longer in pipe's store; run with --redo")
            if self.out_dir:
                os.makedirs(self.out_dir, exist_ok=True)
            from pipeline.media.pictures import with_parameters

            write_output(self.store, target, with_parameters(png, picture.infotext))
        result.output = target
        self.drawn[target] = os.path.basename(result.path if result.is_file else target)

    def close(self, run_id: int) -> None:
        """Draw the contact sheet: every page, or (a page's place taken by a file pipe may
        not replace) none, with an ActionError saying which."""
        if not self.sheet or not self.drawn or self.dry_run:
            return
        from pipeline.media.sheets import contact_sheet, sheet_pages

        sheet = os.path.abspath(self.sheet)
        try:
            for page in sheet_pages(sheet, len(self.drawn)):
                check_replaceable(self.store, str(page))
            pictures = [(label, target) for target, label in self.drawn.items()]
            contact_sheet(pictures, sheet, save=self.save_page)
        except (ActionError, OSError) as e:
            raise ActionError(f"{e}, so no contact sheet (the pictures are saved)") from None

    def save_page(self, page: Path, data: bytes) -> None:
        write_output(self.store, str(page), data)
