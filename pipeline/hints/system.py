"""A step's `system` text with fields: `{folder}`, `{exif.place}`, `{name}` … (the item's
own fields, `SYSTEM_FIELDS`) are filled in per item. `system` was plain text before it
took fields, so everything else in it stays as written, byte for byte: a brace that is no
such field (`{"title": …}`, `{{`) is text, and a system without fields is sent as it was."""

from __future__ import annotations

import re

from pipeline.hints import SYSTEM_FIELDS
from pipeline.templates import Field, Template, TemplateError, compile_template

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def compile_system(source: str) -> Template:
    """`source` as a template whose only fields are the item fields it names."""
    parts: list[str | Field] = []
    pos = 0
    for m in _FIELD.finditer(source):
        if m.group(1) is None:
            continue  # `{{` and `}}` are text here, as they always were
        try:
            field = compile_template(m.group(0), set(SYSTEM_FIELDS)).fields
        except TemplateError:
            continue
        if len(field) == 1:
            parts += [source[pos : m.start()], field[0]]
            pos = m.end()
    parts.append(source[pos:])
    return Template(source, tuple(p for p in parts if p != ""))
