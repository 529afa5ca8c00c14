"""End to end: the prompt hints ({folder}, {stem}, {name_hint}, {exif.date}, {exif.place},
{existing.*}, `language`) as the fake vision server receives them, through the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pipeline.media.xmp.fields import XmpFields, merge_sidecar
from tests.conftest import ROOT, run_pipe
from tests.fakes.llama import FakeLlama
from tests.hints.photos import AREZZO, SAMPLES, copy, embed, gps_photos

EVERY_FIELD = (
    "folder={folder}|stem={stem}|hint={name_hint}|date={exif.date:%B %Y}|place={exif.place}"
    "|town={exif.town}|region={exif.region}|country={exif.country}"
    "|caption={existing.caption}|keywords={existing.keywords}|end"
)


def prompts(server: FakeLlama) -> list[str]:
    """The prompt text (system and user, as the chat template joins them) of every ask."""
    out = []
    for path, body in server.requests:
        if path == "/completion":
            prompt: Any = body["prompt"]
            out.append(prompt["prompt_string"] if isinstance(prompt, dict) else prompt)
    return out


def the_prompt_of(server: FakeLlama, marker: str) -> str:
    found = [p for p in prompts(server) if marker in p]
    assert len(found) == 1, prompts(server)
    return found[0]


def describe(folder: Path, server: FakeLlama, *sets: str) -> Any:
    describe_images = str(ROOT / "recipes" / "describe-images.toml")
    args = ["run", describe_images, str(folder), "--backend", server.url, "--json"]
    for assignment in sets:
        args += ["--set", assignment]
    return run_pipe(*args)


def test_every_field_reaches_the_prompt_and_the_system(tmp_path: Path) -> None:
    album = tmp_path / "Toscana 2008"
    copy(gps_photos()[0], album / "DSCN0010.jpg")
    named = copy(SAMPLES / "no_exif.jpg", album / "piazza_grande-at dusk.jpg")
    embed(
        named,
        iptc={
            "Iptc.Application2.Caption": ["Old square"],
            "Iptc.Application2.Keywords": ["square", "dusk"],
        },
    )
    (album / "piazza_grande-at dusk.jpg.xmp").write_bytes(
        merge_sidecar(None, XmpFields(description="Piazza Grande", keywords=("Arezzo",)))
    )
    with FakeLlama(vision=True, slots=2) as server:
        r = describe(
            album,
            server,
            f"ask.prompt={EVERY_FIELD}",
            'ask.system=Librarian of {folder|upper} {{folder}} {"json": 1} {text}',
        )
    assert r.returncode == 0, r.stderr
    gps = the_prompt_of(server, "stem=DSCN0010|")
    assert "folder=Toscana 2008|stem=DSCN0010|hint=|date=October 2008|" in gps
    assert f"|place={AREZZO}|town=Arezzo|region=Tuscany|country=Italy|" in gps
    assert "|caption=|keywords=|end" in gps
    # The system takes the item's fields; every other brace in it stays as it was written.
    assert 'Librarian of TOSCANA 2008 {{folder}} {"json": 1} {text}' in gps
    other = the_prompt_of(server, "stem=piazza_grande-at dusk|")
    assert "|hint=piazza grande at dusk|" in other and "|place=|town=|region=|country=|" in other
    # The sidecar's caption before the photo's own ("Der Goalie bin ig" in its XMP); the
    # keywords of the sidecar, the photo's XMP ("tag") and its IPTC, once each.
    assert "|caption=Piazza Grande|keywords=Arezzo, tag, square, dusk|end" in other


def test_an_empty_field_can_be_written_around(tmp_path: Path) -> None:
    album = tmp_path / "album"
    copy(SAMPLES / "no_exif.jpg", album / "IMG_0001.jpg")
    copy(gps_photos()[0], album / "DSCN0010.jpg")
    prompt = (
        "ask.prompt=Name it{exif.place|prefix: (taken in |suffix:)}. At {exif.place|or:somewhere}."
    )
    with FakeLlama(vision=True) as server:
        r = describe(album, server, prompt)
    assert r.returncode == 0, r.stderr
    said = prompts(server)
    assert any(f"Name it (taken in {AREZZO}). At {AREZZO}." in p for p in said), said
    assert any("Name it. At somewhere." in p for p in said)


def test_a_hint_is_part_of_the_cache_key(tmp_path: Path) -> None:
    """The same photo in two folders is asked twice when the prompt says the folder; twice
    in one folder, once; and a run again asks nothing."""
    photo = SAMPLES / "Kodak_CX7530.jpg"
    for where in ("beach/a.jpg", "beach/b.jpg", "mountains/c.jpg"):
        copy(photo, tmp_path / "photos" / where)
    with FakeLlama(vision=True) as server:
        r = describe(tmp_path / "photos", server, "ask.prompt=Describe this photo from {folder}.")
        assert r.returncode == 0, r.stderr
        assert server.generate_calls == 2
        asked = sorted(p.split("from ")[1].split(".")[0] for p in prompts(server))
        assert asked == ["beach", "mountains"]
        copy(photo, tmp_path / "photos" / "beach" / "d.jpg")  # new file, folder answered
        r = describe(tmp_path / "photos", server, "ask.prompt=Describe this photo from {folder}.")
        assert r.returncode == 0 and server.generate_calls == 2, r.stderr
        status = {
            Path(rec["path"]).name: rec["status"] for rec in map(json.loads, r.stdout.splitlines())
        }
        assert status["d.jpg"] == "cached"


def test_a_prompt_without_hints_keeps_its_cache_keys(tmp_path: Path, pipe_home: Path) -> None:
    """The key of a step that uses no hint is what it always was: the file's content, the
    model, the step's settings and no inputs, so answers cached before stay valid."""
    import hashlib

    from pipeline import recipe

    album = tmp_path / "album"
    photo = copy(SAMPLES / "Kodak_CX7530.jpg", album / "IMG_0001.jpg")
    with FakeLlama(vision=True) as server:
        r = describe(album, server)
    assert r.returncode == 0, r.stderr
    step = recipe.load(str(ROOT / "recipes" / "describe-images.toml")).steps[0]
    assert set(step.key()) == {
        "kind", "system", "prompt", "max_tokens", "temperature", "stop", "grammar", "format",
        "image_size",
    }  # fmt: skip
    content = hashlib.sha256(photo.read_bytes()).hexdigest()
    with sqlite3.connect(pipe_home / "pipe.db") as db:
        (model,) = db.execute("SELECT DISTINCT model FROM cache").fetchone()
        keys = [row[0] for row in db.execute("SELECT fingerprint FROM cache")]
    blob = json.dumps([content, model, step.key(), {}], sort_keys=True)
    assert keys == [hashlib.sha256(blob.encode()).hexdigest()]


def rename(folder: Path, answer: str, *sets: str) -> tuple[Any, FakeLlama]:
    # The recipe of this checkout (a bare name may find an installed copy's).
    args = ["run", str(ROOT / "recipes" / "rename-images.toml"), str(folder), "--json"]
    for assignment in sets:
        args += ["--set", assignment]
    with FakeLlama(vision=True, answer=lambda _: answer) as server:
        return run_pipe(*args, "--backend", server.url), server


def test_language_reaches_the_prompt_and_names_keep_their_letters(tmp_path: Path) -> None:
    album = tmp_path / "Fotos"
    copy(gps_photos()[0], album / "DSCN0010.jpg")
    r, server = rename(album, "Straße am Meer", "ask.language=de")
    assert r.returncode == 0, r.stderr
    prompt = prompts(server)[0]
    assert "nothing else.\n\nAnswer in German." in prompt
    body = next(b for p, b in server.requests if p == "/completion")
    assert "[a-z]" not in body["grammar"] and "\\u00DF" in body["grammar"]
    assert [p.name for p in album.iterdir()] == ["2008-10-22_straße-am-meer.jpg"]


def test_names_in_japanese_and_without_language_as_before(tmp_path: Path) -> None:
    japanese, english = tmp_path / "ja", tmp_path / "en"
    copy(gps_photos()[0], japanese / "DSCN0010.jpg")
    copy(gps_photos()[0], english / "DSCN0010.jpg")
    r, server = rename(japanese, "日の出 海", "ask.language=ja")
    assert r.returncode == 0, r.stderr
    assert "Answer in Japanese." in prompts(server)[0]
    assert [p.name for p in japanese.iterdir()] == ["2008-10-22_日の出-海.jpg"]
    r, server = rename(english, "quiet old harbour")
    assert r.returncode == 0, r.stderr
    body = next(b for p, b in server.requests if p == "/completion")
    assert (
        body["grammar"] == 'root ::= [a-z]+ (" " [a-z]+){2,5}'
        and "Answer in" not in body["prompt"]["prompt_string"]
    )
    assert [p.name for p in english.iterdir()] == ["2008-10-22_quiet-old-harbour.jpg"]


@pytest.mark.parametrize("junk", ["x;rm", "xx", "de\\nfr", "'" + "a" * 300 + "'"])
def test_a_junk_language_is_one_line_and_exit_2(tmp_path: Path, junk: str) -> None:
    album = tmp_path / "album"
    copy(SAMPLES / "Kodak_CX7530.jpg", album / "a.jpg")
    r = run_pipe("run", "describe-images", str(album), "--set", f"ask.language={junk}")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "ask.language" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr) < 300


def test_a_name_may_say_the_place(tmp_path: Path) -> None:
    album = tmp_path / "album"
    copy(gps_photos()[0], album / "DSCN0010.jpg")
    r, server = rename(album, "old square", "then.name={exif.place|words}_{answer|words}{ext}")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in album.iterdir()] == ["arezzo-tuscany-italy_old-square.jpg"]
    assert "Arezzo" not in prompts(server)[0]  # the prompt did not ask for it


def test_text_items_take_the_folder_around_their_text(tmp_path: Path) -> None:
    """`{folder}` beside `{text}`: the text is fitted into the context around the folder."""
    notes = tmp_path / "Meeting notes"
    notes.mkdir()
    (notes / "monday.txt").write_text("word " * 3000)
    (tmp_path / "other.txt").write_text("short text")
    summarize = str(ROOT / "recipes" / "summarize-text.toml")
    with FakeLlama(n_ctx=2048) as server:
        r = run_pipe(
            "run", summarize, str(notes), str(tmp_path / "other.txt"), "--backend", server.url,
            "--set", "ask.prompt=Notes from {folder|or:nowhere}, {name_hint}:\n{text}",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    said = prompts(server)
    assert any("Notes from Meeting notes, monday:\nword word" in p for p in said), said
    assert any(f"Notes from {tmp_path.name}, other:\nshort text" in p for p in said), said


def test_a_texts_date_is_its_mtime(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("the minutes")
    os.utime(note, (978_350_400, 978_350_400))  # 2001-01-01 12:00 UTC
    summarize = str(ROOT / "recipes" / "summarize-text.toml")
    with FakeLlama() as server:
        r = run_pipe(
            "run", summarize, str(note), "--backend", server.url,
            "--set", "ask.prompt=Written in {exif.date:%Y}{exif.place|prefix: at }: {text}",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Written in 2001: the minutes" in prompts(server)[0]


def test_captions_in_a_language(tmp_path: Path) -> None:
    album = tmp_path / "album"
    copy(gps_photos()[0], album / "DSCN0010.jpg")
    with FakeLlama(vision=True) as server:
        r = describe(album, server, "ask.language=Swiss German")
    assert r.returncode == 0, r.stderr
    assert (
        "Describe this photo in one or two sentences.\n\nAnswer in Swiss German."
        in (prompts(server)[0])
    )
