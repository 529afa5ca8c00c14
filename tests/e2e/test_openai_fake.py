"""End to end: OpenAI-compatible servers (vLLM, Ollama, LM Studio, llama-cpp-python) through
the real CLI against tests/fakes/openai.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.backends import default_urls
from tests.conftest import ROOT, run_pipe
from tests.fakes.openai import FakeOpenAI

SAMPLES = ROOT / "samples" / "photos"
KEY = "sk-test-5f2b9c0d1e"


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def chats(server: FakeOpenAI) -> int:
    return sum(path == "/v1/chat/completions" for path, _ in server.requests)


def test_openai_prefix_speaks_chat_completions_without_detection(notes: Path) -> None:
    with FakeOpenAI() as server:
        r = run_pipe(
            "run", "summarize-text", str(notes), "--backend", f"openai:{server.url}/v1", "--json",
            "-v",
        )  # fmt: skip
        paths = {path for path, _ in server.requests}
    assert r.returncode == 0, r.stderr
    assert [x["status"] for x in records(r.stdout)] == ["done"] * 3
    assert paths == {"/v1/models", "/v1/chat/completions"}  # no koboldcpp or llama.cpp probes
    body = server.bodies[0]
    assert body["model"] == "models/gemma-3-270m-q4_k_m.gguf"  # from /v1/models
    assert body["max_tokens"] == 160 and body["messages"][0]["role"] == "system"
    assert "using openai" in r.stderr and "4 in flight" in r.stderr


def test_the_api_key_is_sent_and_never_kept_or_shown(notes: Path, pipe_home: Path) -> None:
    env = {"VLLM_KEY": KEY}
    with FakeOpenAI(api_key=KEY) as server:
        ok = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            f"openai:{server.url}",
            "--api-key-env",
            "VLLM_KEY",
            env=env,
        )
        assert set(server.authorizations) == {f"Bearer {KEY}"}
        wrong = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            f"openai:{server.url}",
            "--api-key-env",
            "VLLM_KEY",
            "--redo",
            env={"VLLM_KEY": "sk-wrong-key"},
        )
    assert ok.returncode == 0, ok.stderr
    assert wrong.returncode == 3 and "401" in wrong.stderr and "sk-wrong-key" not in wrong.stderr
    stored = b"".join(p.read_bytes() for p in pipe_home.rglob("*") if p.is_file())
    for shown in (stored, ok.stdout.encode(), ok.stderr.encode()):
        assert KEY.encode() not in shown
    unset = run_pipe(
        "run",
        "summarize-text",
        str(notes),
        "--backend",
        "openai:http://127.0.0.1:9",
        "--api-key-env",
        "NO_SUCH_KEY_VAR",
    )
    assert unset.returncode == 2 and "NO_SUCH_KEY_VAR is not set" in unset.stderr


def test_a_server_with_several_models_needs_model_name(notes: Path) -> None:
    with FakeOpenAI(owned_by="library", models=["llava:7b", "mistral:latest"]) as ollama:
        url = f"openai:{ollama.url}/v1"
        several = run_pipe("run", "summarize-text", str(notes), "--backend", url)
        picked = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            url,
            "--model-name",
            "mistral:latest",
            "--json",
        )
        unknown = run_pipe(
            "run", "summarize-text", str(notes), "--backend", url, "--model-name", "llama3"
        )
        models = {b["model"] for b in ollama.bodies}
    assert several.returncode == 3 and "--model-name" in several.stderr
    assert "llava:7b, mistral:latest" in several.stderr and chats(ollama) == 3
    assert picked.returncode == 0 and models == {"mistral:latest"}
    assert {x["model"] for x in records(picked.stdout)} == {"mistral:latest"}
    assert unknown.returncode == 3 and "no model 'llama3'" in unknown.stderr


@pytest.mark.parametrize(
    ("owned_by", "field"),
    [
        ("vllm", "repetition_penalty"),
        ("me", "repeat_penalty"),
        ("organization_owner", "repeat_penalty"),
        ("library", None),
        ("openai", None),
    ],
)
def test_each_server_gets_the_repetition_penalty_by_its_own_name(
    notes: Path, owned_by: str, field: str | None
) -> None:
    with FakeOpenAI(owned_by=owned_by) as server:
        r = run_pipe(
            "run", "summarize-text", str(notes / "note1.md"), "--backend", f"openai:{server.url}"
        )
    assert r.returncode == 0, r.stderr
    body = server.bodies[0]
    sent = {k for k in ("repeat_penalty", "repetition_penalty") if k in body}
    assert sent == ({field} if field else set())
    if field:
        assert body[field] == 1.1


def test_default_jobs_and_j(notes: Path) -> None:
    for i in range(4, 13):
        (notes / f"note{i}.md").write_text(f"Note {i} about boats.\n")
    with FakeOpenAI(slots=8, latency=0.3) as server:
        r = run_pipe("run", "summarize-text", str(notes), "--backend", f"openai:{server.url}")
        assert r.returncode == 0 and server.max_active == 4  # the documented default
    with FakeOpenAI(slots=8, latency=0.3) as server:
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes),
            "--backend",
            f"openai:{server.url}",
            "-j",
            "2",
            "--redo",
        )
        assert r.returncode == 0 and server.max_active == 2


def test_failures_are_retried_by_pipe_alone(notes: Path) -> None:
    with FakeOpenAI(failures=["500", "garbage"]) as server:
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes / "note1.md"),
            "--backend",
            f"openai:{server.url}",
            "--json",
        )
        assert r.returncode == 0, r.stderr
        assert chats(server) == 3  # two failures, one answer: no hidden library retries
    with FakeOpenAI(failures=["500"] * 10) as server:
        r = run_pipe(
            "run",
            "summarize-text",
            str(notes / "note1.md"),
            "--backend",
            f"openai:{server.url}",
            "--retries",
            "2",
            "--json",
            "--redo",
        )
        assert r.returncode == 1 and chats(server) == 3


def test_photos_go_as_image_url_parts(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "landscape_3.jpg", photos / "a.jpg")
    with FakeOpenAI(vision=True) as server:
        r = run_pipe("run", "describe-images", str(photos), "--backend", f"openai:{server.url}")
        parts = [m["content"] for b in server.bodies for m in b["messages"] if m["role"] == "user"]
    assert r.returncode == 0, r.stderr
    images = [p for content in parts for p in content if p["type"] == "image_url"]
    assert images and all(
        p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images
    )
    with FakeOpenAI(vision=False) as blind:
        r = run_pipe(
            "run", "describe-images", str(photos), "--backend", f"openai:{blind.url}", "--redo"
        )
    assert r.returncode == 3 and "cannot take images" in r.stderr


def test_ollama_and_lm_studio_are_default_ports_after_llamafile_and_koboldcpp() -> None:
    assert [u.rsplit(":", 1)[1] for u in default_urls("text")] == ["8080", "5001", "11434", "1234"]
