"""End to end: a character card as the voice of a recipe, checked by what reaches a fake
llama.cpp server (the real CLI in a subprocess)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from tests import real_servers
from tests.conftest import run_pipe
from tests.fakes.llama import FakeLlama, dead_url

CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Marisol",
        "description": (
            "{{char}} keeps the harbour archive and talks to {{user}} like an old friend."
        ),
        "personality": "patient, exact",
        "scenario": "",
        "first_mes": "Welcome back.",
        "mes_example": "<START>\n{{user}}: Any news?\n{{char}}: The tide tables came in.",
        "system_prompt": "",
        "post_history_instructions": "Stay in character as {{char}}; one sentence only.",
    },
}


def write_card(folder: Path, card: dict, name: str = "marisol.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(card))
    return path


def huge_card(folder: Path) -> Path:
    """The card with a description of some 21,000 tokens: larger than any test model's context."""
    huge = json.loads(json.dumps(CARD))
    huge["data"]["description"] = "The archive holds many ledgers. " * 3000
    return write_card(folder, huge)


def completions(llama: FakeLlama) -> list[str]:
    return [body["prompt"] for path, body in llama.requests if path == "/completion"]


def test_card_is_the_voice_and_the_recipe_stays(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    card = write_card(tmp_path, CARD)
    r = run_pipe(
        "run", "summarize-text", str(notes), "--backend", llama.url, "--persona", str(card)
    )
    assert r.returncode == 0, r.stderr
    prompts = completions(llama)
    assert len(prompts) == 3
    for prompt in prompts:
        assert "Marisol keeps the harbour archive and talks to User like an old friend." in prompt
        assert "{{char}}" not in prompt and "{{user}}" not in prompt
        assert "You summarize documents accurately." in prompt  # the recipe's system stays
        # Post-history instructions come after the file's text.
        assert prompt.index("The harbour was busy today.") < prompt.index(
            "Stay in character as Marisol; one sentence only."
        )
        assert prompt.index("Marisol keeps") < prompt.index("You summarize documents")


def test_same_card_is_cached_a_changed_card_redoes(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    card = write_card(tmp_path, CARD)
    args = ["run", "summarize-text", str(notes), "--backend", llama.url, "--persona"]
    assert run_pipe(*args, str(card)).returncode == 0
    assert llama.generate_calls == 3
    # The same card again, even from elsewhere: nothing asked.
    moved = write_card(tmp_path, CARD, "copy.json")
    again = run_pipe(*args, str(moved), "-v")
    assert again.returncode == 0, again.stderr
    assert llama.generate_calls == 3
    # Without the card, or with a changed one: the work is done again.
    assert run_pipe("run", "summarize-text", str(notes), "--backend", llama.url).returncode == 0
    assert llama.generate_calls == 6
    changed = json.loads(json.dumps(CARD))
    changed["data"]["personality"] = "brisk"
    assert run_pipe(*args, str(write_card(tmp_path, changed, "changed.json"))).returncode == 0
    assert llama.generate_calls == 9


def test_png_card_by_name_with_a_sillytavern_user_persona(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    tavern = tmp_path / "SillyTavern"
    characters = tavern / "data" / "default-user" / "characters"
    characters.mkdir(parents=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", base64.b64encode(json.dumps(CARD).encode()).decode())
    Image.new("RGB", (8, 8)).save(characters / "Marisol.png", pnginfo=info)
    settings = {
        "power_user": {
            "personas": {"me.png": "Quinn"},
            "persona_descriptions": {
                "me.png": {"description": "Quinn sails a small boat.", "position": 0}
            },
        }
    }
    (tavern / "data" / "default-user" / "settings.json").write_text(json.dumps(settings))
    r = run_pipe(
        "run",
        "summarize-text",
        str(notes / "note1.md"),
        "--backend",
        llama.url,
        "--persona",
        "marisol",
        "--user-persona",
        "Quinn",
        "--sillytavern",
        str(tavern),
    )
    assert r.returncode == 0, r.stderr
    (prompt,) = completions(llama)
    assert "talks to Quinn like an old friend" in prompt
    assert "Quinn sails a small boat." in prompt


def test_recipe_persona_from_the_config_file(
    llama: FakeLlama, notes: Path, tmp_path: Path, pipe_home: Path
) -> None:
    card = write_card(tmp_path, CARD)
    config = pipe_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    env = {"PIPE_CONFIG_DIR": str(config)}
    (config / "config.toml").write_text(f'[recipes.summarize-text]\npersona = "{card}"\n')
    r = run_pipe("run", "summarize-text", str(notes / "note1.md"), "--backend", llama.url, env=env)
    assert r.returncode == 0, r.stderr
    assert "Marisol keeps the harbour archive" in completions(llama)[0]


def test_bad_cards_are_one_line_exit_2_before_any_model_call(
    llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    bad = {
        "not-a-card.json": json.dumps({"hello": "world"}),
        "broken.json": "{not json",
        "no-chunk.png": None,
    }
    for name, text in bad.items():
        path = tmp_path / name
        if text is None:
            Image.new("RGB", (8, 8)).save(path)
        else:
            path.write_text(text)
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", llama.url, "--persona", str(path)
        )
        assert r.returncode == 2, (name, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (name, r.stderr)
        assert "Traceback" not in r.stderr
    missing = run_pipe("run", "summarize-text", str(notes), "--persona", "nobody-by-this-name")
    assert missing.returncode == 2 and "nobody-by-this-name" in missing.stderr
    alone = run_pipe("run", "summarize-text", str(notes), "--user-persona", "me")
    assert alone.returncode == 2 and "--persona" in alone.stderr
    assert llama.generate_calls == 0


def test_card_far_larger_than_the_context(notes: Path, tmp_path: Path) -> None:
    card = huge_card(tmp_path)
    with FakeLlama(n_ctx=2048) as small:
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", small.url, "--persona", str(card)
        )
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "marisol.json" in r.stderr
        assert "context" in r.stderr
        assert small.generate_calls == 0


def _card_json(spec: str, name: str, description: str) -> dict:
    fields = {"name": name, "description": description, "personality": "", "scenario": ""}
    fields |= {"first_mes": "", "mes_example": ""}
    if spec == "v1":
        return fields
    spec_name = {"v2": "chara_card_v2", "v3": "chara_card_v3"}[spec]
    version = {"v2": "2.0", "v3": "3.0"}[spec]
    return {"spec": spec_name, "spec_version": version, "data": fields}


def _png_card(path: Path, chunks: dict[str, dict]) -> Path:
    info = PngImagePlugin.PngInfo()
    for keyword, card in chunks.items():
        info.add_text(keyword, base64.b64encode(json.dumps(card).encode()).decode())
    Image.new("RGB", (8, 8), "teal").save(path, pnginfo=info)
    return path


@pytest.mark.parametrize(
    "form",
    ["png chara v1", "png chara v2", "png ccv3", "png both", "json v1", "json v2", "json v3"],
)
def test_every_card_form_reaches_the_server(
    form: str, llama: FakeLlama, notes: Path, tmp_path: Path
) -> None:
    """Each form SillyTavern writes, judged by what the server is sent; with both chunks,
    the V3 one wins as in SillyTavern."""
    container, _, spec = form.partition(" ")
    said = f"{{{{char}}}} catalogues tide tables ({form})."
    if container == "json":
        card = tmp_path / "card.json"
        card.write_text(json.dumps(_card_json(spec, "Odile", said)))
    elif spec == "both":
        stale = _card_json("v2", "Stale", "Old text that SillyTavern no longer shows.")
        card = _png_card(
            tmp_path / "card.png", {"chara": stale, "ccv3": _card_json("v3", "Odile", said)}
        )
    else:  # "chara v1", "chara v2", "ccv3"
        keyword, _, version = spec.partition(" ")
        card = _png_card(
            tmp_path / "card.png", {keyword: _card_json(version or "v3", "Odile", said)}
        )
    r = run_pipe(
        "run",
        "summarize-text",
        str(notes / "note1.md"),
        "--backend",
        llama.url,
        "--persona",
        str(card),
    )
    assert r.returncode == 0, r.stderr
    (prompt,) = completions(llama)
    assert f"Odile catalogues tide tables ({form})." in prompt
    assert "Stale" not in prompt and "Old text" not in prompt


@pytest.mark.real
def test_a_card_too_big_for_a_model_started_on_first_need_stops_the_run_exit_2(
    notes: Path, tmp_path: Path
) -> None:
    """The embedded model says its context only once it starts: the run stops at the first
    request, before any is sent, with the same one line and exit 2."""
    real_servers.need_embedded_model()
    card = huge_card(tmp_path)
    env = {"PIPE_DEFAULT_BACKENDS": dead_url(), "PIPE_DEFAULT_IMAGE_BACKENDS": dead_url()}
    r = run_pipe("run", "summarize-text", str(notes), "--persona", str(card), env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if "marisol.json" in line]
    assert len(errors) == 1 and "context" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
