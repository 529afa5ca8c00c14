"""The filters with a text (`|or:`, `|prefix:`, `|suffix:`) that write around a field that
may be empty, such as `{exif.place}` for a photo without GPS."""

from __future__ import annotations

import pytest

from pipeline.templates import TemplateError, compile_template


@pytest.mark.parametrize(
    ("source", "place", "expected"),
    [
        ("At {place|or:somewhere}.", "Arezzo", "At Arezzo."),
        ("At {place|or:somewhere}.", "", "At somewhere."),
        ("At {place|or:somewhere}.", "  ", "At somewhere."),
        ("Name it{place|prefix: (taken in |suffix:)}.", "Arezzo", "Name it (taken in Arezzo)."),
        ("Name it{place|prefix: (taken in |suffix:)}.", "", "Name it."),
        ("{place|upper|prefix:in }", "rome", "in ROME"),
        ("{ place | prefix:in  }", "rome", "in  rome"),  # the text's spaces are meant
    ],
)
def test_text_filters(source: str, place: str, expected: str) -> None:
    assert compile_template(source).render({"place": place}) == expected


def test_an_unknown_filter_names_the_text_filters() -> None:
    with pytest.raises(TemplateError, match=r"unknown filter '\|nope:x'.*or:TEXT.*prefix:TEXT"):
        compile_template("{place|nope:x}")
    with pytest.raises(TemplateError, match="unknown filter"):
        compile_template("{place|upper:x}")  # a plain filter takes no text


def test_a_field_spec_and_filters_read_as_before() -> None:
    template = compile_template("{ date:%Y }|{name|lower}")
    assert [(f.name, f.spec, f.filters) for f in template.fields] == [
        ("date", "%Y", ()),
        ("name", "", ("lower",)),
    ]
