"""Naming from untrusted model answers: slugs, safe file names and collision-free renames."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import templates
from pipeline.renaming.names import MAX_BYTES, UnusableName, plan_renames, safe_filename, slug

RESERVED = {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}

# Answers a renamer must survive; each is fed through every stage below.
HOSTILE: list[str] = [
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "\\\\server\\share\\x",
    "..",
    ".",
    "...",
    "CON",
    "con.txt",
    "CON .jpg",
    "nul.txt",
    "LPT1",
    "com9 ",
    "Aux",
    "prn.tar.gz",
    "word " * 80,  # 400 characters of text
    "x" * 300,  # one 300-character word
    "é" * 300,
    "日本" * 200,
    "🌅🌊",
    "",
    "   ",
    "a\x00b",
    "\x00",
    "first line\nsecond",
    "tab\there\rcarriage",
    "\x1b[31mred\x1b[0m",
    "sunset.jpg",
    '"A quiet harbour at dawn"',
    "Filename: red_bicycle.png",
    "Crème brûlée à Paris",
    "東京タワー",
    "Straße in Köln",
    "-rf",
    "--help",
    ".hidden",
    ".-. x",
    "invoice\u202egpj.exe",  # right-to-left override disguising the extension
    "zero\u200bwidth",
    "bad\ud800surrogate",
    'a<b>c:d"e|f?g*h',
    "trailing dots...",
    "trailing space   ",
    "x" * 254 + "é",
    "!!!",
    "\n\n\n",
]


def _control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cf", "Cs")


def assert_safe_name(name: str) -> None:
    assert name not in ("", ".", "..")
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert not any(_control(c) for c in name), repr(name)
    assert not any(c in '<>:"|?*' for c in name), repr(name)
    assert not name.startswith((".", "-", " ")), repr(name)
    assert not name.endswith((".", " ")), repr(name)
    raw = name.encode("utf-8")  # also proves there are no lone surrogates
    assert len(raw) <= MAX_BYTES
    raw.decode("utf-8")
    assert name.split(".")[0].rstrip(" ").casefold() not in RESERVED, repr(name)
    assert os.path.basename(name) == name
    assert Path("folder", name).parent == Path("folder")


# --- slug -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("A quiet harbour at dawn", "a-quiet-harbour-at-dawn"),
        ('"A quiet harbour at dawn"', "a-quiet-harbour-at-dawn"),
        ("“A quiet harbour at dawn.”", "a-quiet-harbour-at-dawn"),
        ("'single quoted'", "single-quoted"),
        ("Filename: red_bicycle.png", "red-bicycle"),
        ("File name: red bicycle", "red-bicycle"),
        ("FILENAME:red bicycle", "red-bicycle"),
        ("Answer: Sunset over the sea", "sunset-over-the-sea"),
        ("title: Sunset", "sunset"),
        ('Title: "Sunset"', "sunset"),
        ("**Title:** Sunset", "sunset"),
        ("Answer: Title: Sunset", "sunset"),
        ("sunset.jpg", "sunset"),
        ("sunset.JPEG", "sunset"),
        ("Sunset over the sea.", "sunset-over-the-sea"),
        ("sunset.jpg.", "sunset"),
        ("pi is 3.14", "pi-is-3-14"),
        ("first line\nsecond", "first-line"),
        ("\n\n  \nsecond line only\nthird", "second-line-only"),
        ("Title:\nSunset over sea", "sunset-over-sea"),
        ("Crème brûlée à Paris", "creme-brulee-a-paris"),
        ("Straße in Köln", "strasse-in-koln"),
        ("Æsir Øresund Œuvre Łódź Đakovo Þór", "aesir-oresund-oeuvre-lodz-dakovo-thor"),
        ("İstanbul", "istanbul"),
        ("ﬁsh", "fish"),
        ("Tokyo東京Tower", "tokyo-tower"),
        ("Don't panic", "dont-panic"),
        ("the children’s park", "the-childrens-park"),
        ("a  --  b__c", "a-b-c"),
        ("../../etc/passwd", "etc-passwd"),
        ("C:\\Windows\\system32", "c-windows-system32"),
        ("a\x00b", "a-b"),
        ("UPPER lower MiXeD 42", "upper-lower-mixed-42"),
    ],
)
def test_slug(answer: str, expected: str) -> None:
    assert slug(answer) == expected


@pytest.mark.parametrize(
    "answer", ["", "   ", "\n\n", "🌅🌊", "!!!", "...", "東京タワー", '""', "—"]
)
def test_slug_nothing_usable(answer: str) -> None:
    assert slug(answer) == ""


def test_slug_max_words_and_separator() -> None:
    text = " ".join(f"w{i}" for i in range(30))
    assert slug(text) == "-".join(f"w{i}" for i in range(12))
    assert slug(text, max_words=3) == "w0-w1-w2"
    assert slug("Crème brûlée", "_") == "creme_brulee"
    with pytest.raises(ValueError):
        slug("x", max_words=0)


def test_slug_output_is_plain_ascii() -> None:
    for answer in HOSTILE:
        out = slug(answer)
        assert out == "" or all(part.isascii() and part.isalnum() for part in out.split("-"))
        assert not out.startswith("-") and not out.endswith("-") and "--" not in out
        assert out == out.lower()


def test_slug_filters_registered_in_templates() -> None:
    tpl = templates.compile_template("{answer|slug}{sep}{answer|slug_}")
    out = tpl.render({"answer": '"Crème brûlée à Paris"', "sep": "+"})
    assert out == "creme-brulee-a-paris+creme_brulee_a_paris"


# --- safe_filename ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("sunset", "sunset.jpg"),
        ("../../etc/passwd", "etc-passwd.jpg"),
        ("/etc/passwd", "etc-passwd.jpg"),
        ("C:\\Windows\\system32", "C-Windows-system32.jpg"),
        ("CON", "CON_.jpg"),
        ("con", "con_.jpg"),
        ("nul.txt", "nul_.txt.jpg"),
        ("CON .jpg", "CON_.jpg.jpg"),
        ("LPT1", "LPT1_.jpg"),
        ("com9 ", "com9_.jpg"),
        ("COM0", "COM0_.jpg"),
        ("console", "console.jpg"),  # only exact device names are reserved
        ("com10", "com10.jpg"),
        ("a\x00b", "ab.jpg"),
        ("first line\nsecond", "first line second.jpg"),
        ("-rf", "rf.jpg"),
        ("--help", "help.jpg"),
        (".hidden", "hidden.jpg"),
        (" . - .x", "x.jpg"),
        ("trailing dots...", "trailing dots.jpg"),
        ("trailing space   ", "trailing space.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe.jpg"),
        ('a<b>c:d"e|f?g*h', "a-b-c-d-e-f-g-h.jpg"),
        ("Crème brûlée", "Crème brûlée.jpg"),
        ("cafe\u0301", "caf\u00e9.jpg"),  # NFC: one form on every file system
    ],
)
def test_safe_filename(stem: str, expected: str) -> None:
    assert safe_filename(stem, ".jpg") == expected


def test_safe_filename_keeps_extension_as_given() -> None:
    assert safe_filename("Sunset", ".JPG") == "Sunset.JPG"
    assert safe_filename("notes", "") == "notes"
    assert safe_filename("nul", "") == "nul_"


@pytest.mark.parametrize("stem", ["", "   ", "\x00", "..", ".", "...", "/", "\\", "- . -", "\n\t"])
def test_safe_filename_unusable(stem: str) -> None:
    with pytest.raises(UnusableName) as err:
        safe_filename(stem, ".jpg")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("ext", ["jpg", ".", "..", ".jp/g", ".jp\\g", ".j\x00", ".jpg.", ".j g"])
def test_safe_filename_rejects_bad_extension(ext: str) -> None:
    with pytest.raises(UnusableName):
        safe_filename("sunset", ext)


def test_safe_filename_no_room_for_stem() -> None:
    with pytest.raises(UnusableName):
        safe_filename("sunset", ".jpg", max_bytes=4)
    assert safe_filename("sunset", ".jpg", max_bytes=5) == "s.jpg"


def test_safe_filename_truncates_to_bytes() -> None:
    name = safe_filename("word " * 80, ".jpg")
    assert len(name.encode()) == 255 and name.startswith("word word ")  # cut mid-word is fine
    name = safe_filename("x" * 300, ".jpg")
    assert name == "x" * 251 + ".jpg" and len(name.encode()) == 255


@pytest.mark.parametrize("char", ["é", "日本", "🌅", "ß"])
@pytest.mark.parametrize("max_bytes", [10, 11, 12, 13, 100, 255])
def test_truncation_never_splits_a_character(char: str, max_bytes: int) -> None:
    name = safe_filename("a" + char * 200, ".jpg", max_bytes=max_bytes)
    raw = name.encode("utf-8")
    assert len(raw) <= max_bytes
    assert raw.decode("utf-8") == name
    stem = name.removesuffix(".jpg")
    assert set(stem[1:]) <= set(char)
    # the cut lost less than one character's worth of room
    assert max_bytes - len(raw) < len(char.encode())


def test_truncation_restrips_separators() -> None:
    assert safe_filename("abc  \n  defgh", ".jpg", max_bytes=8) == "abc.jpg"
    assert safe_filename("abc---def", ".jpg", max_bytes=10) == "abc.jpg"
    assert safe_filename("abc...def", ".jpg", max_bytes=10) == "abc.jpg"


def test_truncation_cannot_recreate_a_device_name() -> None:
    assert safe_filename("con_tent", ".jpg", max_bytes=8) == "con_.jpg"
    # "con_tent" cut to 3 bytes would be "con": it must not come back as a device name
    with pytest.raises(UnusableName):
        safe_filename("con_tent", ".jpg", max_bytes=7)


@pytest.mark.parametrize("stem", HOSTILE)
@pytest.mark.parametrize("ext", [".jpg", ".JPEG", ""])
def test_every_hostile_stem_is_safe_or_refused(stem: str, ext: str) -> None:
    try:
        name = safe_filename(stem, ext)
    except UnusableName as err:
        assert "\n" not in str(err)
        return
    assert_safe_name(name)
    assert name.endswith(ext)


@pytest.mark.parametrize("answer", HOSTILE)
def test_slug_then_safe_filename(answer: str) -> None:
    stem = slug(answer)
    if not stem:
        with pytest.raises(UnusableName):
            safe_filename(stem, ".jpg")
        return
    assert_safe_name(safe_filename(stem, ".jpg"))


# --- plan_renames -----------------------------------------------------------------------


def fake_exists(*names: str) -> Callable[[Path], bool]:
    present = {Path(n) for n in names}
    return lambda p: p in present


def names(plan: list[tuple[Path, Path]]) -> list[tuple[str, str]]:
    return [(old.name, new.name) for old, new in plan]


D = Path("/photos")


def test_plan_simple() -> None:
    plan = plan_renames([(D / "IMG_1.jpg", "sunset.jpg")], fake_exists())
    assert plan == [(D / "IMG_1.jpg", D / "sunset.jpg")]


def test_plan_same_answer_for_every_photo() -> None:
    wanted = [(D / f"IMG_{i}.jpg", "sunset.jpg") for i in range(5)]
    assert [new for _, new in names(plan_renames(wanted, fake_exists()))] == [
        "sunset.jpg",
        "sunset-2.jpg",
        "sunset-3.jpg",
        "sunset-4.jpg",
        "sunset-5.jpg",
    ]


def test_plan_is_deterministic_and_in_input_order() -> None:
    wanted = [(D / f"IMG_{i}.jpg", n) for i, n in enumerate(["b.jpg", "a.jpg", "b.jpg", "a.jpg"])]
    first = plan_renames(wanted, fake_exists())
    assert first == plan_renames(wanted, fake_exists())
    assert names(first) == [
        ("IMG_0.jpg", "b.jpg"),
        ("IMG_1.jpg", "a.jpg"),
        ("IMG_2.jpg", "b-2.jpg"),
        ("IMG_3.jpg", "a-2.jpg"),
    ]


def test_plan_name_already_on_disk() -> None:
    plan = plan_renames([(D / "IMG_1.jpg", "sunset.jpg")], fake_exists("/photos/sunset.jpg"))
    assert names(plan) == [("IMG_1.jpg", "sunset-2.jpg")]
    exists = fake_exists("/photos/sunset.jpg", "/photos/sunset-2.jpg")
    assert names(plan_renames([(D / "IMG_1.jpg", "sunset.jpg")], exists)) == [
        ("IMG_1.jpg", "sunset-3.jpg")
    ]


def test_plan_only_checks_the_files_own_folder() -> None:
    exists = fake_exists("/other/sunset.jpg")
    wanted = [(D / "IMG_1.jpg", "sunset.jpg"), (Path("/other/IMG_1.jpg"), "sunset.jpg")]
    assert plan_renames(wanted, exists) == [
        (D / "IMG_1.jpg", D / "sunset.jpg"),
        (Path("/other/IMG_1.jpg"), Path("/other/sunset-2.jpg")),
    ]


def test_plan_case_only_collisions() -> None:
    wanted = [(D / "IMG_1.jpg", "Beach.jpg"), (D / "IMG_2.jpg", "beach.jpg")]
    assert names(plan_renames(wanted, fake_exists())) == [
        ("IMG_1.jpg", "Beach.jpg"),
        ("IMG_2.jpg", "beach-2.jpg"),
    ]
    # ... and "BEACH-2.JPG" planned earlier in the batch also blocks "beach-2.jpg"
    wanted = [(D / "a.jpg", "BEACH-2.JPG"), (D / "b.jpg", "beach.jpg"), (D / "c.jpg", "beach.jpg")]
    assert [n for _, n in names(plan_renames(wanted, fake_exists()))] == [
        "BEACH-2.JPG",
        "beach.jpg",
        "beach-3.jpg",
    ]


def test_plan_nfc_and_nfd_spellings_collide() -> None:
    wanted = [(D / "a.jpg", "caf\u00e9.jpg"), (D / "b.jpg", "cafe\u0301.jpg")]
    assert [n for _, n in names(plan_renames(wanted, fake_exists()))] == [
        "caf\u00e9.jpg",
        "cafe\u0301-2.jpg",
    ]


def test_plan_leaves_out_already_named() -> None:
    wanted = [
        (D / "sunset.jpg", "sunset.jpg"),
        (D / "Beach.jpg", "beach.jpg"),  # case-only: not worth a risky rename
        (D / "IMG_3.jpg", "sunset.jpg"),
    ]
    exists = fake_exists("/photos/sunset.jpg", "/photos/Beach.jpg", "/photos/IMG_3.jpg")
    assert names(plan_renames(wanted, exists)) == [("IMG_3.jpg", "sunset-2.jpg")]


def test_plan_leaves_out_names_from_an_earlier_collision() -> None:
    wanted = [
        (D / "sunset.jpg", "sunset.jpg"),
        (D / "sunset-2.jpg", "sunset.jpg"),
        (D / "sunset-17.jpg", "sunset.jpg"),
        (D / "sunset-1.jpg", "sunset.jpg"),  # we never write "-1": not ours
        (D / "sunset-2.png", "sunset.jpg"),  # other extension: not ours
        (D / "dawn-2.jpg", "sunset.jpg"),
    ]
    assert names(plan_renames(wanted, fake_exists())) == [
        ("sunset-1.jpg", "sunset-3.jpg"),
        ("sunset-2.png", "sunset-4.jpg"),
        ("dawn-2.jpg", "sunset-5.jpg"),
    ]


def test_plan_rerun_is_a_no_op(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"IMG_{i}.jpg").write_bytes(b"x")
    wanted = [(tmp_path / f"IMG_{i}.jpg", "sunset.jpg") for i in range(3)]
    for old, new in plan_renames(wanted):
        old.rename(new)
    again = [(p, "sunset.jpg") for p in sorted(tmp_path.iterdir())]
    assert plan_renames(again) == []


def test_plan_names_being_renamed_away_still_count_as_taken() -> None:
    # b.jpg leaves in this batch, yet nobody may take its name: order of renames never matters
    wanted = [(D / "a.jpg", "b.jpg"), (D / "b.jpg", "c.jpg")]
    assert names(plan_renames(wanted, fake_exists())) == [("a.jpg", "b-2.jpg"), ("b.jpg", "c.jpg")]
    # a swap never happens either
    wanted = [(D / "a.jpg", "b.jpg"), (D / "b.jpg", "a.jpg")]
    assert names(plan_renames(wanted, fake_exists())) == [
        ("a.jpg", "b-2.jpg"),
        ("b.jpg", "a-2.jpg"),
    ]


def test_plan_long_stem_plus_suffix_stays_within_255_bytes() -> None:
    name = "s" * 250 + ".jpg"
    assert len(name.encode()) == 254
    wanted = [(D / f"{i}.jpg", name) for i in range(12)]
    new = [n for _, n in names(plan_renames(wanted, fake_exists()))]
    assert new[0] == name
    assert new[1] == "s" * 249 + "-2.jpg"
    assert new[11] == "s" * 248 + "-12.jpg"
    assert all(len(n.encode()) <= 255 for n in new)
    assert len({n.casefold() for n in new}) == len(new)


def test_plan_suffix_cut_respects_multibyte_characters() -> None:
    name = safe_filename("日本" * 100, ".jpg")
    wanted = [(D / f"{i}.jpg", name) for i in range(3)]
    for _, new in names(plan_renames(wanted, fake_exists())):
        raw = new.encode("utf-8")
        assert len(raw) <= 255 and raw.decode("utf-8") == new
        assert_safe_name(new)


def test_plan_rerun_after_truncated_collision() -> None:
    name = "s" * 250 + ".jpg"
    wanted = [(D / name, name), (D / ("s" * 249 + "-2.jpg"), name)]
    assert plan_renames(wanted, fake_exists()) == []


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "../x.jpg", "a/b.jpg", "/etc/passwd", "a\\b.jpg", "a\x00b", "x" * 256]
)
def test_plan_rejects_names_that_are_not_one_component(bad: str) -> None:
    with pytest.raises(UnusableName):
        plan_renames([(D / "IMG_1.jpg", bad)], fake_exists())


def test_plan_gives_up_when_exists_always_says_yes() -> None:
    with pytest.raises(UnusableName):
        plan_renames([(D / "IMG_1.jpg", "sunset.jpg")], lambda p: True)


def test_plan_new_is_always_in_the_old_folder() -> None:
    wanted = [(D / "sub" / f"IMG_{i}.jpg", "x.jpg") for i in range(3)]
    for old, new in plan_renames(wanted, fake_exists()):
        assert new.parent == old.parent


def test_plan_with_real_folder(tmp_path: Path) -> None:
    for n in ("IMG_1.jpg", "IMG_2.jpg", "IMG_3.JPG", "IMG_4.jpg", "sunset.jpg", "dawn.jpg"):
        (tmp_path / n).write_bytes(n.encode())
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing")  # lexists sees it
    answers = {
        "IMG_1.jpg": "A sunset.",
        "IMG_2.jpg": "Sunset",
        "IMG_3.JPG": "../../etc/passwd",
        "IMG_4.jpg": "broken",
        "dawn.jpg": '"Dawn"',
    }
    wanted = []
    for n, answer in answers.items():
        path = tmp_path / n
        wanted.append((path, safe_filename(slug(answer), path.suffix)))
    plan = plan_renames(wanted)
    assert names(plan) == [
        ("IMG_1.jpg", "a-sunset.jpg"),
        ("IMG_2.jpg", "sunset-2.jpg"),
        ("IMG_3.JPG", "etc-passwd.JPG"),
        ("IMG_4.jpg", "broken-2.jpg"),
    ]
    before = {p.name for p in tmp_path.iterdir()}
    for old, new in plan:
        assert not os.path.lexists(new)
        old.rename(new)
    after = {p.name for p in tmp_path.iterdir()}
    assert len(after) == len(before)
    assert {"sunset.jpg", "dawn.jpg", "sunset-2.jpg", "etc-passwd.JPG"} <= after
    assert (tmp_path / "sunset.jpg").read_bytes() == b"sunset.jpg"  # untouched


def test_plan_every_hostile_answer_in_a_real_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    wanted: list[tuple[Path, str]] = []
    for i, answer in enumerate(HOSTILE * 2):  # twice: every answer also collides
        path = photos / f"IMG_{i:03}.jpg"
        path.write_bytes(str(i).encode())
        for stem in (answer, slug(answer)):
            try:
                wanted.append((path, safe_filename(stem, ".jpg")))
                break
            except UnusableName:
                continue
    plan = plan_renames(wanted)
    assert len({new.name.casefold() for _, new in plan}) == len(plan)
    for old, new in plan:
        assert new.parent == old.parent == photos
        assert_safe_name(new.name)
        old.rename(new)
    assert sorted(p.read_bytes() for p in photos.iterdir()) == sorted(
        str(i).encode() for i in range(len(HOSTILE) * 2)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]


def test_huge_answers_stay_fast() -> None:
    # Regex backtracking on long runs of junk would make these take minutes.
    junk = "- " * 200_000 + "x" + " -" * 200_000
    assert slug(junk) == "x"
    assert safe_filename(junk, ".jpg") == "x.jpg"
    assert len(safe_filename("word " * 200_000, ".jpg").encode()) == 255


def test_plan_big_batch_of_one_answer() -> None:
    calls: list[Path] = []

    def exists(p: Path) -> bool:
        calls.append(p)
        return False

    wanted = [(D / f"IMG_{i}.jpg", "sunset.jpg") for i in range(2000)]
    plan = plan_renames(wanted, exists)
    assert plan[-1][1].name == "sunset-2000.jpg"
    assert len({new for _, new in plan}) == 2000
    assert len(calls) < 3 * 2000  # linear, not quadratic, probing
