"""The extension point: a new action is one class and one registry line. Its `then` keys
are read by recipe loading, its needs are checked at load and for `--write`, and it opens
and runs like the others."""

from __future__ import annotations

import pytest

from pipeline import actions, recipe
from pipeline.actions import write_choices
from pipeline.errors import RecipeError
from pipeline.results import Result
from pipeline.store.database import Store
from tests.actions.shout import ShoutKeys
from tests.actions.support import DRAW, TEXT, VISION, opened, recipe_of


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one line a new action adds to `pipeline/actions/__init__.py`."""
    monkeypatch.setitem(actions.ACTIONS, "shout", ("tests.actions.shout", "Shout", True))


def test_its_keys_are_read_by_recipe_loading() -> None:
    loaded = recipe_of(VISION + "[then]\naction = 'shout'\nshout = 'yes'\nbanner = '{stem}'\n")
    assert loaded.action == "shout"
    keys = loaded.then.get(ShoutKeys)
    assert keys.shout == "yes" and keys.banner.source == "{stem}"
    assert recipe_of(VISION).then.get(ShoutKeys) == ShoutKeys()  # the defaults


@pytest.mark.parametrize(
    ("then", "message"),
    [
        ("shout = 'loud'", "then.shout: expected one of no, yes, got 'loud'"),
        ("shout = 1", "then.shout: expected a string, got 1"),
        ("banner = '{answer}'", "then.banner: unknown field {answer}; known: dir, ext, name,"),
        ("bogus = 1", "then.bogus: unknown field; expected one of action, banner, date,"),
    ],
)
def test_its_bad_values_are_refused_at_load(then: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        recipe_of(VISION + f"[then]\naction = 'shout'\n{then}\n")
    assert str(caught.value).startswith(f"r.toml: {message}")


def test_its_needs_are_checked_at_load_and_for_write() -> None:
    with pytest.raises(RecipeError, match="'shout' describes photos, but this recipe reads no"):
        recipe_of(TEXT + "[then]\naction = 'shout'\n")
    with pytest.raises(RecipeError, match="'shout' needs text, but the last step draws"):
        recipe_of(DRAW + "[then]\naction = 'shout'\n")
    assert "shout" in write_choices()
    assert recipe.action_problem(recipe_of(TEXT).steps, "shout").startswith("'shout' describes")
    assert recipe.action_problem(recipe_of(VISION).steps, "shout") == ""


def test_it_opens_and_runs_like_the_others(store: Store) -> None:
    recipe_text = VISION + "[then]\naction = 'shout'\nshout = 'yes'\n"
    action, out = opened(recipe_of(recipe_text).action, recipe_text, store)
    action.apply(Result("photos/a.jpg", "done", "a fox"))
    assert out.getvalue() == "== a.jpg ==\nA FOX\n"
