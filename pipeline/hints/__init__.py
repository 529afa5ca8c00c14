"""Prompt hints: what a file already tells about itself, as template fields any prompt (and
`system`) may use. Each field with logic is its own module; `FIELDS` lists them.

| field | module | what |
|---|---|---|
| `{folder}` | folder.py | the parent folder's name |
| `{name_hint}` | camera_names.py | the file's name as words, "" for `IMG_1234` and such |
| `{existing.caption}`, `{existing.keywords}` | existing.py | the photo's XMP/IPTC, its sidecar |
| `{exif.place}`, `.town`, `.region`, `.country` | place.py | GPS named offline |

A field is read only for a recipe whose templates use it (`Hints(names)`, made once a run
from the templates' field names), since each costs time per item; a field that has nothing
to say is "" (`{exif.place|or:somewhere}`, `|prefix:`, `|suffix:` write around it). The
values enter the answer cache's key (`key_inputs`) only for a step that uses them, so a
step without them keeps the keys it always had.

To add a field: write its module, add its name to `FIELDS` (or its part to `EXIF_PARTS`) and
read it in `Hints.read`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.templates import Template, TemplateError, lookup

if TYPE_CHECKING:
    from pipeline.recipe import Recipe

# The new top-level fields, each read by its module.
FIELDS = frozenset({"folder", "name_hint", "existing"})
# The parts of `{exif.*}` made from GPS (exif.py reads the rest of exif).
EXIF_PARTS = frozenset({"place", "town", "region", "country"})
# What `system` may use: the item's own fields, no answer and no text.
SYSTEM_FIELDS = frozenset({"name", "path", "stem", "ext", "exif", *FIELDS})


def is_hint(dotted: str) -> bool:
    """A field these modules read (and so one that enters the cache key)."""
    top, _, rest = dotted.partition(".")
    return top in FIELDS or (top == "exif" and rest in EXIF_PARTS)


def names_in(templates: Iterable[Template]) -> frozenset[str]:
    """The hint fields the templates use (dotted names)."""
    return frozenset(f.name for t in templates for f in t.fields if is_hint(f.name))


def recipe_names(recipe: Recipe) -> frozenset[str]:
    """The hint fields a recipe uses anywhere: its steps' prompts and systems, and the
    templates of its `[then]` (a name may say `{exif.place}` too)."""
    templates = [t for step in recipe.steps for t in step.templates()]
    for settings in recipe.then.settings:
        for f in dataclasses.fields(settings):
            value = getattr(settings, f.name)
            if isinstance(value, Template):
                templates.append(value)
    return names_in(templates)


class Hints:
    """Reads, for each item, the hint fields a run's templates use, and nothing else."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n for n in names if is_hint(n))
        self.tops = {n.partition(".")[0] for n in self.names}
        self.place = any(n.startswith("exif.") for n in self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def read(self, path: str | None, exif: Mapping[str, Any] | None) -> dict[str, Any]:
        """The fields for a file at `path` (None: a line or stdin text, whose fields are
        empty); `exif` is the item's `{exif}` mapping, returned with the GPS parts added."""
        values: dict[str, Any] = {}
        if "folder" in self.tops:
            values["folder"] = _folder(path)
        if "name_hint" in self.tops:
            from pipeline.hints.camera_names import name_hint

            values["name_hint"] = name_hint(path) if path else ""
        if "existing" in self.tops:
            from pipeline.hints import existing

            values["existing"] = existing.existing(path) if path else existing.empty()
        if self.place:
            from pipeline.hints import place

            found = place.place(exif.get("lat"), exif.get("lon")) if exif else place.empty()
            values["exif"] = {**(exif or {}), **found}
        return values


def _folder(path: str | None) -> str:
    from pipeline.hints.folder import folder_of

    return folder_of(path) if path else ""


def key_inputs(templates: Iterable[Template], values: Mapping[str, Any]) -> dict[str, str]:
    """The hint fields the templates use, as rendered: what a cached answer depends on
    besides the file's content. Keyed `{name}`, which no step name can be."""
    inputs: dict[str, str] = {}
    for name in sorted(names_in(templates)):
        try:
            value = lookup(values, name)
        except TemplateError:
            value = ""
        inputs[f"{{{name}}}"] = "" if value is None else str(value)
    return inputs
