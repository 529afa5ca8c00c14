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
    named = {p for p in named if "NAME" not in p}  # `pipeline/actions/NAME.py`: a pattern
    assert named and sorted(p for p in named if not (ROOT / p).is_file()) == []


# Which packages may not import which (ARCHITECTURE.md, "Layers"): the lower layers know
# nothing of those above them.
# Packages that read one kind of file and know nothing of the run around them.
LEAF = (
    "pipeline.engine",
    "pipeline.actions",
    "pipeline.backends",
    "pipeline.store",
    "pipeline.steps",
    "pipeline.cli",
    "pipeline.api",
)
FORBIDDEN = {
    "engine": ("pipeline.actions", "pipeline.cli", "pipeline.api"),
    "backends": ("pipeline.engine", "pipeline.actions", "pipeline.cli", "pipeline.api"),
    "store": ("pipeline.engine", "pipeline.actions", "pipeline.cli", "pipeline.api"),
    "media": ("pipeline.engine", "pipeline.actions", "pipeline.cli", "pipeline.api"),
    "steps": ("pipeline.actions", "pipeline.cli", "pipeline.api"),
    "actions": ("pipeline.engine", "pipeline.cli", "pipeline.api"),
    "servers": ("pipeline.engine", "pipeline.actions", "pipeline.cli"),
    "doctor": ("pipeline.engine", "pipeline.actions", "pipeline.cli"),
    "personas": LEAF,
    "bench": ("pipeline.engine", "pipeline.cli", "pipeline.api"),
    # Prompt hints read files; the engine and the steps read them, never the reverse.
    "hints": LEAF,
}
IMPORT = re.compile(r"^\s*(?:from|import) (pipeline(?:\.\w+)*)", re.M)


def test_lower_layers_import_nothing_above_them() -> None:
    crossings = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / "pipeline" / package).rglob("*.py")):
            for module in IMPORT.findall(path.read_text(encoding="utf-8")):
                if module.startswith(forbidden):
                    crossings.append(f"{path.relative_to(ROOT)} imports {module}")
    assert crossings == []
