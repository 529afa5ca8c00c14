"""Each action's `then` keys as recipe loading reads them: good values, and bad ones refused
with the messages pipe has always given (people and scripts read them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import recipe, tomlfile
from pipeline.actions import ACTIONS
from pipeline.errors import RecipeError

ASK = "[ask]\nprompt = 'x'\n"
VISION = "[ask]\nkind = 'vision'\nprompt = 'x'\n"
DRAW = "[ask]\nkind = 'txt2img'\nprompt = 'x'\n"
STEPS = "[[steps]]\nname = 'title'\nprompt = 'x'\n"
NAME_KNOWN = "known: dir, ext, name, path, recipe, stem"


def parse(text: str) -> recipe.Recipe:
    return recipe.parse(tomlfile.loads(text), Path("r.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("then = 3\n" + ASK, "then: expected a table"),
        (
            ASK + "[then]\nbogus = 1\n",
            "then.bogus: unknown field; expected one of action, date, field, hierarchy, image,"
            " name, sidecar",
        ),
        # the action
        (ASK + "[then]\naction = 3\n", "then.action: expected a string, got 3"),
        (
            ASK + "[then]\naction = 'explode'\n",
            "then.action: expected one of print, sidecar, xmp, embedded, rename, image,"
            " got 'explode'",
        ),
        # sidecar
        (ASK + "[then]\nsidecar = 3\n", "then.sidecar: expected a string, got 3"),
        (
            ASK + "[then]\nsidecar = '{nope}.txt'\n",
            f"then.sidecar: unknown field {{nope}}; {NAME_KNOWN}",
        ),
        (
            ASK + "[then]\nsidecar = '{answer}.txt'\n",
            f"then.sidecar: unknown field {{answer}}; {NAME_KNOWN}",
        ),
        (
            ASK + "[then]\nsidecar = '{path'\n",
            "then.sidecar: unmatched '{' at character 1 (use '{{')",
        ),
        # rename
        (ASK + "[then]\nname = 5\n", "then.name: expected a string, got 5"),
        (
            ASK + "[then]\nname = '{nope}{ext}'\n",
            "then.name: unknown field {nope}; known: answer, counter, exif, ext, name, stem",
        ),
        (
            STEPS + "[then]\nname = '{nope}{ext}'\n",
            "then.name: unknown field {nope}; known: answer, counter, exif, ext, name, stem, title",
        ),
        (
            ASK + "[then]\nname = '{counter:%Y}{ext}'\n",
            "then.name: format spec of {counter:%Y}: Invalid format specifier '%Y' for object "
            "of type 'int'",
        ),
        (ASK + "[then]\ndate = 1\n", "then.date: expected a string, got 1"),
        (
            ASK + "[then]\ndate = 'never'\n",
            "then.date: expected one of original, mtime, got 'never'",
        ),
        # image
        (ASK + "[then]\nimage = true\n", "then.image: expected a string, got True"),
        (
            ASK + "[then]\nimage = '{answer}.png'\n",
            f"then.image: unknown field {{answer}}; {NAME_KNOWN}, text",
        ),
        # what each action needs
        (
            ASK + "[then]\naction = 'xmp'\n",
            "then.action: 'xmp' describes photos, but this recipe reads no image; use sidecar",
        ),
        (ASK + "[then]\naction = 'image'\n", "then.action: 'image' needs a last step that draws"),
        (
            DRAW + "[then]\naction = 'sidecar'\n",
            "then.action: 'sidecar' needs text, but the last step draws; use action = \"image\"",
        ),
        (
            DRAW + "[then]\naction = 'rename'\n",
            "then.action: 'rename' needs text, but the last step draws; use action = \"image\"",
        ),
        (
            DRAW + "[then]\naction = 'xmp'\n",
            "then.action: 'xmp' needs text, but the last step draws; use action = \"image\"",
        ),
        # a key of an action the recipe does not choose is still checked: `--write` may choose it
        (
            ASK + "[then]\naction = 'print'\nsidecar = '{x}'\n",
            f"then.sidecar: unknown field {{x}}; {NAME_KNOWN}",
        ),
    ],
)
def test_a_bad_then_value_is_refused_with_its_message(text: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse(text)
    assert str(caught.value) == f"r.toml: {message}"


@pytest.mark.parametrize(
    ("steps", "action", "problem"),
    [
        (ASK, "print", ""),
        (ASK, "sidecar", ""),
        (ASK, "rename", ""),
        (VISION, "xmp", ""),
        (DRAW, "image", ""),
        (DRAW, "print", ""),
        (ASK, "xmp", "'xmp' describes photos, but this recipe reads no image; use sidecar"),
        (ASK, "image", "'image' needs a last step that draws"),
        (DRAW, "sidecar", "'sidecar' needs text, but the last step draws; use action = \"image\""),
    ],
)
def test_action_problem_says_what_an_action_needs(steps: str, action: str, problem: str) -> None:
    """What `--write` checks before any model is asked, as `then.action` is checked."""
    assert recipe.action_problem(parse(steps).steps, action) == problem


def test_every_registered_action_has_its_unit_tests() -> None:
    for name in ACTIONS:
        assert (Path(__file__).parent / f"test_{name}.py").is_file(), name
