"""pipeline.templates: fields, format specs, filters and braces."""

from __future__ import annotations

import pytest

from pipeline.templates import TemplateError, compile_template


def test_template_fields_specs_filters_and_braces() -> None:
    t = compile_template("{{x}} {name|upper} {n:03d} {a.b}", {"name", "n", "a"})
    assert t.render({"name": "cat", "n": 7, "a": {"b": "deep"}}) == "{x} CAT 007 deep"


def test_template_inserts_values_once() -> None:
    t = compile_template("Q: {text}", {"text"})
    assert t.render({"text": "{text} {__class__}"}) == "Q: {text} {__class__}"


@pytest.mark.parametrize("source", ["{nope}", "{text", "text}", "{text|shout}", "{a-b}"])
def test_template_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(source, {"text"})
