"""ARCHITECTURE.md's worked examples are the code the extension-point tests run: each
example block, marked `<!-- example: PATH -->`, must be that file's text exactly, so a
change that breaks an example breaks its test, and fixing the test fixes the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```\n", re.S)


def examples() -> list[tuple[str, str]]:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return [(m["path"], m["code"]) for m in EXAMPLE.finditer(text)]


def test_there_is_an_example_for_each_extension_point() -> None:
    paths = {path for path, _ in examples()}
    assert {"tests/backends/toy.py", "tests/steps/yesno.py"} <= paths
    assert any(path.startswith("tests/actions/") for path in paths)


@pytest.mark.parametrize(("path", "code"), examples(), ids=lambda v: v if "/" in v else "")
def test_an_example_is_the_code_its_tests_run(path: str, code: str) -> None:
    assert code == (ROOT / path).read_text(encoding="utf-8")


def test_every_module_the_page_names_exists() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:pipeline|tests|bench|tools)/[\w/]+\.py)`", text))
    assert named and sorted(p for p in named if not (ROOT / p).is_file()) == []
