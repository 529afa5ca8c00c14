"""The package keeps the shape ARCHITECTURE.md describes: modules, classes and functions
small enough to read on their own (issue #16's limits)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 400, 250, 60
# Pure data tables, exempt: the first migration is the initial schema, column by column.
DATA_TABLES = {"store/schema.py:_m001_initial"}


def oversized(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(package).as_posix()
        if len(text.splitlines()) > MODULE_LINES:
            found.append(f"{name}: a module of {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = CLASS_LINES if isinstance(node, ast.ClassDef) else FUNCTION_LINES
            if lines > limit and f"{name}:{node.name}" not in DATA_TABLES:
                found.append(f"{name}:{node.lineno}: {node.name} has {lines} lines")
    return found


def test_no_module_class_or_function_is_over_its_limit() -> None:
    assert oversized(PACKAGE) == []


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("def f():\n" + "    x = 1\n" * FUNCTION_LINES, "big.py:1: f has 61 lines"),
        ("class C:\n" + "    x = 1\n" * CLASS_LINES, "big.py:1: C has 251 lines"),
        ("x = 1\n" * (MODULE_LINES + 1), "big.py: a module of 401 lines"),
    ],
)
def test_the_check_sees_what_is_too_big(tmp_path: Path, source: str, complaint: str) -> None:
    (tmp_path / "big.py").write_text(source)
    assert oversized(tmp_path) == [complaint]
