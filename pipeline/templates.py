"""A tiny, safe template language for prompts and file names.

`{text}`, `{exif.date:%Y-%m-%d}`, `{answer|slug}`; `{{` and `}}` are literal braces. A field
that may be empty (a photo without GPS has no `{exif.place}`) takes a filter with text:
`{exif.place|or:somewhere}` (the text when empty), `{exif.place|prefix:taken in }` and
`|suffix:. ` (the text beside the value, nothing when it is empty).
Unlike `str.format`, a field is only ever looked up in a plain mapping (no attribute or
index access), and values are inserted once: model output placed into a template is never
itself treated as a template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# A width or precision past this is a mistake: `{name:>500000000}` would take 4 GB per item.
MAX_WIDTH = 1000
MAX_SPEC = 100  # characters; a strftime spec's output is bounded by its length
MAX_WIDTHS = 10 * MAX_WIDTH  # all of one template's widths together
# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_STANDARD_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[_,]?(?:\.(\d+))?[a-zA-Z%]?\Z", re.S)
# A strftime spec (`{exif.date:%Y}`): glibc reads `%500000000Y` as a width too.
_STRFTIME_WIDTH = re.compile(r"%[-_0^#]*(\d+)")

Filter = Callable[[str], str]
FILTERS: dict[str, Filter] = {
    "lower": str.lower,
    "upper": str.upper,
    "strip": str.strip,
    "first_line": lambda s: s.strip().splitlines()[0] if s.strip() else "",
}
# Filters given a text after a colon (`|or:somewhere`); the text holds no `|`, `{` or `}`.
TextFilter = Callable[[str, str], str]
TEXT_FILTERS: dict[str, TextFilter] = {
    "or": lambda value, text: value if value.strip() else text,
    "prefix": lambda value, text: text + value if value.strip() else "",
    "suffix": lambda value, text: value + text if value.strip() else "",
}


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    spec: str
    filters: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Field, ...]

    @property
    def fields(self) -> list[Field]:
        return [p for p in self.parts if isinstance(p, Field)]

    def render(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = lookup(values, part.name)
            text = _format(value, part) if part.spec else _to_str(value)
            for name in part.filters:
                text = _apply(name, text)
            out.append(text)
        return "".join(out)

    def check_specs(self, sample: Callable[[str], Any]) -> None:
        """Format `sample(name)` with each field's spec, so a spec that cannot apply to the
        field (`{answer:,}`) is an error when the template is loaded, not at every item."""
        for part in self.fields:
            if part.spec:
                _format(sample(part.name), part)


def _format(value: Any, part: Field) -> str:
    try:
        return format(value, part.spec)
    except (ValueError, TypeError) as e:
        raise TemplateError(f"format spec of {{{part.name}:{part.spec}}}: {e}") from None


def _apply(filter_: str, text: str) -> str:
    name, colon, argument = filter_.partition(":")
    return TEXT_FILTERS[name](text, argument) if colon else FILTERS[name](text)


def _to_str(value: Any) -> str:
    return "" if value is None else str(value)


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    """Find `a.b.c` in nested mappings; a missing field is a TemplateError."""
    current: Any = values
    for key in dotted.split("."):
        if not isinstance(current, Mapping) or key not in current:
            raise TemplateError(f"no field {{{dotted}}}")
        current = current[key]
    return current


def compile_template(source: str, allowed: set[str] | None = None) -> Template:
    """Parse once; with `allowed`, every field's first name must be one of them."""
    parts: list[str | Field] = []
    pos = 0
    for m in _FIELD.finditer(source):
        parts.append(source[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        if m.group(1) is None:
            raise TemplateError(
                f"unmatched '{token}' at character {m.start() + 1} (use '{token * 2}')"
            )
        parts.append(_parse_field(m.group(1), allowed))
    parts.append(source[pos:])
    widths = sum(_spec_width(p.spec) for p in parts if isinstance(p, Field))
    if widths > MAX_WIDTHS:
        raise TemplateError(f"the widths in this template add up to {widths}, over {MAX_WIDTHS}")
    return Template(source, tuple(p for p in parts if p != ""))


def _parse_field(raw: str, allowed: set[str] | None) -> Field:
    body = raw.strip()
    head, *filters = raw.split("|")
    filters = [_filter_token(f) for f in filters]
    name, _, spec = head.strip().partition(":")
    if not _NAME.match(name):
        raise TemplateError(f"bad field name {{{body}}}")
    if allowed is not None and name.split(".")[0] not in allowed:
        raise TemplateError(f"unknown field {{{name}}}; known: {', '.join(sorted(allowed))}")
    for f in filters:
        filter_name, colon, _ = f.partition(":")
        if (filter_name not in TEXT_FILTERS) if colon else (f not in FILTERS):
            known = sorted([*FILTERS, *(f"{n}:TEXT" for n in TEXT_FILTERS)])
            raise TemplateError(f"unknown filter '|{f}'; known: {', '.join(known)}")
    if len(spec) > MAX_SPEC:
        raise TemplateError(f"format spec of {{{name}}} is over {MAX_SPEC} characters")
    if _spec_width(spec) > MAX_WIDTH:
        raise TemplateError(
            f"width or precision {_spec_width(spec)} in {{{name}:{spec}}} is over the limit of"
            f" {MAX_WIDTH}"
        )
    return Field(name, spec, tuple(filters))


def _filter_token(token: str) -> str:
    """A filter's name without spaces around it; a text filter's text as written (its
    spaces are meant: `|prefix:taken in `)."""
    name, colon, argument = token.partition(":")
    return f"{name.strip()}:{argument}" if colon and name.strip() in TEXT_FILTERS else token.strip()


def _spec_width(spec: str) -> int:
    """The largest width or precision in a format spec (at most MAX_SPEC characters)."""
    m = _STANDARD_SPEC.match(spec)
    numbers = [n for n in m.groups() if n] if m else _STRFTIME_WIDTH.findall(spec)
    return max((int(n) for n in numbers), default=0)


def register_filter(name: str, func: Filter) -> None:
    """Lets other modules (naming) add filters such as `slug` without an import cycle."""
    FILTERS[name] = func
