"""What starting pipe loads: every module of the package imports alone (no import cycle
hides behind another module imported first), and the commands that need no images load no
image code. `pipe --help`'s time is a benchmark (bench/startup.py), not a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

IMAGE_MODULES = ("PIL", "pyvips", "pillow_heif", "pillow_jxl", "pipeline.media")

# Runs `pipe ARGS` in this interpreter and prints the modules it loaded, as JSON.
LOADED = """
import json, runpy, sys
sys.argv = ["pipe", *sys.argv[1:]]
try:
    runpy.run_module("pipeline", run_name="__main__")
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

# Imports each module named on the command line in a child forked from an interpreter that
# has loaded nothing of pipe's: each import starts from an empty pipeline.* as a fresh
# interpreter would, without paying a whole interpreter start per module.
EACH_ALONE = """
import os, sys, traceback, importlib
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name)
print(" ".join(failed))
"""


def loaded_by(*args: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", LOADED, *args], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stderr.strip().splitlines()[-1])


def image_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in IMAGE_MODULES or m.startswith(IMAGE_MODULES)]


def test_pipe_recipes_loads_no_image_code(pipe_home: Path) -> None:
    modules = loaded_by("recipes")
    assert "pipeline.recipe" in modules  # it did list the recipes
    assert image_modules(modules) == []


def test_pipe_help_loads_no_image_code_nor_what_the_commands_run(pipe_home: Path) -> None:
    modules = loaded_by("--help")
    assert image_modules(modules) == []
    heavy = (
        "pipeline.api",
        "pipeline.engine",
        "pipeline.store",
        "pipeline.doctor",
        "pipeline.recipe",
    )
    assert [m for m in modules if m.startswith(heavy)] == []
    assert [m for m in modules if m.startswith(("httpx", "sqlite_utils", "tqdm"))] == []


def package_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return [n for n in names if n != "pipeline.__main__"]  # that one runs the CLI


def test_every_module_imports_alone() -> None:
    modules = package_modules()
    assert "pipeline.cli.run" in modules and "pipeline.settings" in modules
    r = subprocess.run(
        [sys.executable, "-c", EACH_ALONE, *modules], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [], r.stderr
