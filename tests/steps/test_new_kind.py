"""The extension point: a step kind added as one module (tests/steps/yesno.py) and one
registry entry is read by recipe parsing, the doctor and the engine, with no other change."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipeline import recipe as recipes
from pipeline import steps
from pipeline.actions import Action, ActionContext
from pipeline.backends import connect
from pipeline.doctor.checks import Probe, diagnose
from pipeline.engine import Options, Runner, file_items
from pipeline.errors import RecipeError
from pipeline.sources import Filters, expand
from pipeline.steps import IMAGE_SERVER, TEXT_SERVER
from pipeline.store.database import Store
from tests.fakes.llama import FakeLlama
from tests.steps import yesno

RECIPE = {"inputs": ["*.txt"], "ask": {"kind": "yesno", "prompt": "Is this about cats? {text}"}}


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(steps.KINDS, "yesno", yesno.KIND)  # the one registry line


def test_an_unregistered_kind_is_refused() -> None:
    with pytest.raises(RecipeError, match="ask.kind: expected one of .*, got 'yesno'"):
        recipes.parse(RECIPE, Path("cats.toml"))


def test_a_registered_kind_is_parsed_with_its_own_keys(registered: None) -> None:
    r = recipes.parse(RECIPE, Path("cats.toml"))
    step = r.steps[0]
    assert isinstance(step, yesno.YesNoStep) and step.grammar == yesno.YES_NO
    assert r.asks and not r.draws and not r.needs_image
    assert r.needs(TEXT_SERVER) == {"text", "grammar"} and r.needs(IMAGE_SERVER) == set()
    with pytest.raises(RecipeError, match="ask.grammar: unknown field"):
        recipes.parse({"ask": {**RECIPE["ask"], "grammar": "x"}}, Path("cats.toml"))
    with pytest.raises(RecipeError, match="ask.kind: expected one of text, .*, yesno, got"):
        recipes.parse({"ask": {"kind": "nope", "prompt": "x"}}, Path("cats.toml"))


def test_the_doctor_says_what_a_new_kind_needs(registered: None) -> None:
    r = recipes.parse(RECIPE, Path("cats.toml"))
    nothing_there = [("http://127.0.0.1:9", "flag --backend")]
    report = diagnose(nothing_there, None, [], r, Probe(wait=0, timeout=2))
    assert not report.ok
    assert report.verdict == "cats cannot run (needs a text model (grammar))"


def test_the_engine_runs_a_new_kind(registered: None, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("my cat sleeps\n")
    r = recipes.parse(RECIPE, tmp_path / "cats.toml")
    out = io.StringIO()
    with FakeLlama(answer=lambda prompt: "yes") as server:
        backend = connect(server.url)
        store = Store(tmp_path / "state.db")
        action = Action.open(ActionContext(r, store, out, as_json=True, model="m"))
        entries = expand([str(tmp_path)], Filters(patterns=r.inputs))
        summary = Runner(r, backend, store, action, Options()).run(file_items(entries), [])
        store.close()
        backend.close()
        sent = [body for path, body in server.requests if path == "/completion"]
    assert summary.exit_code == 0
    assert [json.loads(line)["answer"] for line in out.getvalue().splitlines()] == ["yes"]
    assert sent and all(body["grammar"] == yesno.YES_NO for body in sent)
