"""`pipe bench`'s tables: the seed's shape for known figures, names from servers that cannot
break a table or reach a terminal raw, and the history's order and changes."""

from __future__ import annotations

import dataclasses
import re

import pytest

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.bench.table import cells, render_history, render_table, seconds

KOBOLD = "http://127.0.0.1:5001"
AT = "2026-12-03T19:30:00+00:00"


def biotics(backend: str = KOBOLD, model: str = "gemma-7b-it.Q4_K_M", **kw: object) -> Figures:
    values: dict = dict(
        context_size=8024,
        gpu_layers=18,
        prompt_tokens=1125,
        prompt_per_second=412.3,
        first_token_seconds=0.35,
        generated_per_second=38.24,
        overhead_ms=3.4,
    )
    values.update(kw)
    seconds_ = values.pop("seconds", 19.2)
    return Figures(BIOTICS, backend, "koboldcpp", model, seconds_, values.pop("at", AT), **values)


def sd_you(backend: str = KOBOLD, model: str = "gemma-7b-it.Q4_K_M", **kw: object) -> Figures:
    values: dict = dict(context_size=8024, gpu_layers=18, width=512, height=512, steps=20)
    values.update(kw)
    seconds_ = values.pop("seconds", 50.4)
    return Figures(SD_YOU, backend, "koboldcpp", model, seconds_, values.pop("at", AT), **values)


def test_one_backend_reads_as_the_seed_chart_with_its_rates_below() -> None:
    assert render_table([biotics(), sd_you()]) == (
        "| model              | contextsize | gpulayers | biotics | /sd you |\n"
        "|--------------------|------------:|----------:|--------:|--------:|\n"
        "| gemma-7b-it.Q4_K_M |        8024 |        18 |     19s |     50s |\n"
        "\n"
        "| model              | prompt | prompt/s | 1st token | gen/s | pipe ms |\n"
        "|--------------------|-------:|---------:|----------:|------:|--------:|\n"
        "| gemma-7b-it.Q4_K_M |  1,125 |      412 |     0.35s |  38.2 |    3.40 |\n"
        "\n"
        "biotics: prompt = tokens the server counted, /s = tokens a second,\n"
        "1st token = time to the first token, pipe ms = a request's time outside the\n"
        "server's own figures: pipe, HTTP and what the server does not count (its set-up)\n"
    )


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def columns(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_what_a_backend_cannot_say_is_a_dash() -> None:
    bare = Figures(BIOTICS, "embedded", "embedded", "gemma-3-270m", 0.8)
    lines = table_lines(render_table([bare]))
    assert columns(lines[2]) == ["gemma-3-270m", "–", "–", "0.80s", "–"]
    assert len(lines) == 3  # no rates table when no rate is known


def test_one_row_per_backend_with_the_backend_named_when_models_repeat() -> None:
    figures = [biotics(), sd_you(), biotics("http://127.0.0.1:8080", seconds=21.0)]
    lines = table_lines(render_table(figures))
    assert columns(lines[0])[:2] == ["model", "backend"]
    assert [columns(line)[1] for line in lines[2:4]] == [":5001", ":8080"]
    assert columns(lines[3])[-2:] == ["21s", "–"]
    distinct = [biotics(), biotics("http://127.0.0.1:8080", model="llama-3.2-1b")]
    assert columns(table_lines(render_table(distinct))[0])[1] == "contextsize"


def test_the_newest_figures_of_a_backend_and_test_win() -> None:
    lines = table_lines(render_table([biotics(seconds=30.0), biotics(seconds=12.0)]))
    assert len(lines) == 6 and columns(lines[2])[3] == "12s"


HOSTILE = [
    "evil\x1b]0;owned\x07name",
    "a|b|c",
    "line\nbreak\r\n| x | y |",
    "\x1b[2J\x1b[31mred",
    "rtl\u202eexe.jpg",
    "\x9b31m8-bit CSI",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_from_a_server_cannot_break_the_table_or_reach_the_terminal(name: str) -> None:
    figures = [biotics(model=name), sd_you(model=name), biotics(backend=name, model=name)]
    text = render_table(figures) + render_history(figures)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text)
    for table in render_table(figures).split("\n\n")[:2]:
        lines = table.splitlines()
        assert len(lines) == 4  # header, rule, two rows: no line break got through
        assert {line.count("|") for line in lines} == {lines[0].count("|")}
        assert len({cells(line) for line in lines}) == 1


def test_long_and_wide_names_are_cut_to_fit_80_columns_keeping_the_end() -> None:
    long = "/models/Meta-Llama-3.1-70B-Instruct-abliterated-imatrix-IQ2_XXS.gguf"
    wide = "通义千问-Qwen2.5-72B-Instruct-中文对话模型-Q4_K_M"
    text = render_table([biotics(model=long), biotics("http://127.0.0.1:8080", model=wide)])
    lines = table_lines(text)
    assert max(cells(line) for line in lines) == 80  # the names take what is left
    assert len({cells(line) for line in lines[:4]}) == 1  # and still line up
    assert "…" in lines[2] and columns(lines[2])[0].endswith("IQ2_XXS")
    assert "/models" not in text and ".gguf" not in text  # a file's name, not its path
    wider = table_lines(render_table([biotics(model=long)], width=120))
    assert "Meta-Llama-3.1-70B-Instruct-abliterated-imatrix-IQ2_XXS" in wider[2]


def test_twelve_backends_with_a_repeated_model_stay_within_80_columns() -> None:
    figures = [biotics(f"http://192.168.1.{n}:5001", model="gemma-7b-it") for n in range(12)]
    lines = table_lines(render_table(figures))
    assert len(lines) == 2 * (2 + 12)
    assert max(cells(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (19.2, "19s"),
        (50.4, "50s"),
        (2.43, "2.4s"),
        (0.35, "0.35s"),
        (0.004, "4ms"),
        (0.0001, "<1ms"),
        (0, "0s"),
        (9.97, "10s"),
        (59.7, "1m 00s"),
        (65.2, "1m 05s"),
        (7384, "2h 03m"),
        (None, "–"),
        (float("nan"), "–"),
        (float("inf"), "–"),
        (-1.0, "–"),
    ],
)
def test_seconds_read_as_a_person_writes_them(value: float | None, shown: str) -> None:
    assert seconds(value) == shown


def test_huge_and_zero_figures_keep_the_table_whole() -> None:
    figures = [
        biotics(seconds=0.0, prompt_per_second=0.0, generated_per_second=0.0),
        biotics("http://127.0.0.1:8080", model="b", seconds=1e7, prompt_per_second=1e9),
    ]
    lines = table_lines(render_table(figures))
    assert len({cells(line) for line in lines}) == 2  # one width per table
    assert "1,000,000,000" in lines[-1]


def history() -> list[Figures]:
    day = "2026-12-0{}T19:30:00+00:00"
    return [
        biotics(seconds=20.0, at=day.format(1)),
        sd_you(seconds=50.0, at=day.format(1)),
        biotics(seconds=17.0, at=day.format(2)),
        sd_you(seconds=60.0, at=day.format(2)),
        biotics(seconds=17.1, at=day.format(3)),
        sd_you(seconds=10.0, at=day.format(3), width=64, height=64, steps=1),
    ]


def rows_of(text: str, heading: str) -> list[list[str]]:
    block = text.split(heading, 1)[1].split("\n\n")[1]
    return [columns(line) for line in block.splitlines()[2:]]


def test_history_shows_each_run_in_order_against_the_one_before() -> None:
    text = render_history(history())
    assert text.startswith("biotics on :5001: gemma-7b-it.Q4_K_M\n")
    runs = rows_of(text, "biotics on :5001")
    assert [r[0] for r in runs] == ["2026-12-01 19:30", "2026-12-02 19:30", "2026-12-03 19:30"]
    assert [r[1] for r in runs] == ["20s", "17s", "17s"]
    assert [r[-1] for r in runs] == ["first run", "▼ 15% faster", "= same"]
    pictures = rows_of(text, "/sd you on :5001")
    assert [r[-1] for r in pictures] == ["first run", "▲ 20% slower", "other size"]
    assert pictures[2][2:4] == ["64×64", "1"]


def test_a_new_model_on_a_backend_is_named_and_compared_with_its_own_runs() -> None:
    figures = [f for f in history() if f.test == BIOTICS]
    figures.insert(2, dataclasses.replace(figures[0], model="llama-3.2-1b", seconds=5.0))
    runs = rows_of(render_history(figures), "biotics on :5001")
    models = [r[1] for r in runs]
    assert models[2] == "llama-3.2-1b"
    assert [m.startswith("gemma") and m.endswith("Q4_K_M") for m in models] == [1, 1, 0, 1]
    assert [r[-1] for r in runs] == ["first run", "▼ 15% faster", "new model", "= same"]


def test_history_keeps_backends_apart_and_says_when_there_is_none() -> None:
    other = biotics("http://127.0.0.1:8080", seconds=5.0)
    text = render_history([*history(), other])
    assert "biotics on :8080: gemma-7b-it.Q4_K_M" in text
    assert rows_of(text, "biotics on :8080")[0][-1] == "first run"
    assert render_history([]) == "no bench figures kept yet: run pipe bench\n"
    assert render_table([]) == "no bench figures\n"
