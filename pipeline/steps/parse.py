"""A recipe's step table read by its kind: the shared fields here, the rest as the kind's
module declares them."""

from __future__ import annotations

from typing import Any

from pipeline.errors import RecipeError
from pipeline.steps import DEFAULT_KIND, KINDS
from pipeline.steps.base import ITEM_FIELDS, SHARED_KEYS, Step
from pipeline.steps.table import Table, check_specs


def parse_step(raw: Any, where: str, label: str, earlier: set[str]) -> Step:
    """The step in table `raw` (named `label` in errors); `earlier` are the names of the
    steps before it, whose answers its prompt may use."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: {label}: expected a table")
    table = Table(raw, where, f"{label}.")
    given = raw.get("kind")
    # An unknown kind is said after the fields are checked as the default kind's.
    known = KINDS.get(given) if isinstance(given, str) else None
    table.no_unknown_keys(SHARED_KEYS | set((known or KINDS[DEFAULT_KIND]).keys))
    name = table.typed("name", str, "answer")
    if not name.isidentifier() or name in ITEM_FIELDS - {"answer"} or name in earlier:
        raise table.error("name", f"{name!r} must be a new identifier, not a field name")
    kind_name = table.typed("kind", str, DEFAULT_KIND)
    kind = KINDS.get(kind_name)
    if kind is None:
        raise table.error("kind", f"expected one of {', '.join(KINDS)}, got {kind_name!r}")
    if "prompt" not in raw:
        raise table.error("prompt", "missing (the text sent to the model)")
    source = table.typed("prompt", str, "")
    prompt = table.template("prompt", source, ITEM_FIELDS | earlier)
    step = kind.build(name, prompt, table.read(kind.keys))
    for extra in step.templates()[1:]:  # a text step's system, with the item's fields
        check_specs(extra, where, f"{label}.system")
    return step
