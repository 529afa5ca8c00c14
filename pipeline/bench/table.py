"""`pipe bench`'s results as text: a table shaped like the home-lab users' own chart (model,
contextsize, gpulayers, biotics, /sd you), the biotics rates under it, and the history of a
box. Markdown pipe tables, so a table pasted into a note renders there and reads as it is in
an 80-column terminal. Model names and backends come from servers: every cell is escaped
(terminal.escape), loses its `|`, and is cut to fit, whatever stream it is printed to, since
a control character or a `|` would break the table in a file as on a terminal."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.terminal import escape

UNKNOWN = "–"  # a figure the backend cannot say
WIDTH = 80  # what a table fits when the caller does not say
MIN_NAME = 12  # a name is never cut below this, even if the table then runs wider
ELLIPSIS = "…"
BAR = "¦"  # what a `|` in a name becomes: still visible, no longer a column

# --- one cell ------------------------------------------------------------------------------


def cell(text: str) -> str:
    """Server text made safe for one table cell: controls escaped, no column break."""
    return escape(text).replace("|", BAR)


def cells(text: str) -> int:
    """How many terminal columns `text` takes (wide CJK takes two, combining marks none)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) == "Cf":
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def cut(text: str, limit: int) -> str:
    """`text` within `limit` columns, cut in the middle: a model's name ends with what tells
    two files apart (the quantisation: "…-Q4_K_M"), so the end stays."""
    if cells(text) <= limit:
        return text
    keep = max(limit - 1, 0)
    head, tail = "", ""
    for char in text:  # the head takes a little more than half
        if cells(head + char) > (keep + 1) // 2:
            break
        head += char
    for char in reversed(text):
        if cells(head + tail + char) > keep:
            break
        tail = char + tail
    return head + ELLIPSIS + tail


MODEL_FILES = (".gguf", ".llamafile", ".bin", ".safetensors", ".ckpt")
LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")


def model_name(model: str) -> str:
    """The name a person knows a model by: a model file's name without folder or suffix."""
    name = model.strip()
    if name.lower().endswith(MODEL_FILES):
        name = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return cell(name) or UNKNOWN


def backend_name(backend: str) -> str:
    """A backend as a row names it: ":5001" for a server on this machine (most are), a URL
    without its `http://` elsewhere, a model file's name for `cli:`/`model:`."""
    name = backend.removeprefix("http://").rstrip("/")
    if name.startswith(LOOPBACK) and "/" not in name:
        name = ":" + name.rsplit(":", 1)[1]
    elif name.startswith(("cli:", "model:")):
        kind, _, path = name.partition(":")
        name = f"{kind}:{model_name(path)}"
    return cell(name) or UNKNOWN


# --- figures as a person reads them --------------------------------------------------------


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def seconds(value: float | None) -> str:
    """19s, 2.4s, 0.35s, 8ms, 1m 05s, 2h 03m: as precise as a person compares them."""
    if not _known(value) or value < 0:  # type: ignore[operator]
        return UNKNOWN
    assert value is not None
    if value == 0:
        return "0s"
    if round(value * 1000) < 10:
        return f"{round(value * 1000)}ms" if value >= 0.0005 else "<1ms"
    if round(value, 2) < 1:
        return f"{value:.2f}s"
    if round(value, 1) < 10:
        return f"{value:.1f}s"
    whole = round(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    minutes = round(value / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m"


def rate(value: float | None) -> str:
    """Three figures or the whole number: 412, 38.2, 4.07, 12,345."""
    if not _known(value):
        return UNKNOWN
    assert value is not None
    if abs(value) >= 99.95:
        return f"{value:,.0f}"
    if abs(value) >= 9.995:
        return f"{value:.1f}"
    return f"{value:.2f}"


def count(value: int | None) -> str:
    """Tokens as the issue writes them: 1,125."""
    return UNKNOWN if value is None else f"{value:,}"


def setting(value: int | None) -> str:
    """A server setting as its flag takes it: --contextsize 8024."""
    return UNKNOWN if value is None else str(value)


def when(at: str) -> str:
    """An ISO 8601 time as a date and minute (UTC, as the store keeps it)."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return cut(cell(at), 16) or UNKNOWN
    return moment.strftime("%Y-%m-%d %H:%M")


# --- tables --------------------------------------------------------------------------------

Column = tuple[str, str]  # header, alignment: "<" text, ">" figures


def markdown(columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown pipe table padded to line up in a terminal; cells are already safe."""
    rows = [list(r) for r in rows]
    widths = [max([cells(h), *(cells(r[i]) for r in rows)]) for i, (h, _) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        out = []
        for value, (_, align), w in zip(values, columns, widths, strict=True):
            pad = " " * (w - cells(value))
            out.append(value + pad if align == "<" else pad + value)
        return "| " + " | ".join(out) + " |"

    rule = [
        "-" * (w + 1) + ":" if a == ">" else "-" * (w + 2)
        for (_, a), w in zip(columns, widths, strict=True)
    ]
    return [line([h for h, _ in columns]), "|" + "|".join(rule) + "|", *map(line, rows)]


def name_room(width: int, fixed: Sequence[Column], rows: Iterable[Sequence[str]]) -> int:
    """Columns left for the names once the figures' columns have theirs."""
    rows = list(rows)
    taken = sum(max([cells(h), *(cells(r[i]) for r in rows)]) for i, (h, _) in enumerate(fixed))
    borders = 3 * (len(fixed) + 1) + 1  # "| " ... " | " ... " |"
    return width - taken - borders


class Row:
    """One backend: its biotics and /sd you figures (the newest of each)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tests: dict[str, Figures] = {}

    @property
    def any(self) -> Figures:
        return self.tests.get(BIOTICS) or self.tests[SD_YOU]

    def first(self, pick: Callable[[Figures], int | None]) -> int | None:
        """A setting either test knows (the context size, the GPU layers)."""
        found = [pick(f) for f in self.tests.values() if pick(f) is not None]
        return found[0] if found else None


def backend_rows(figures: Iterable[Figures]) -> list[Row]:
    """One row per backend, in the order they first appear; a later figure of the same
    backend and test replaces an earlier one (newest last)."""
    rows: dict[str, Row] = {}
    for f in figures:
        if f.test in (BIOTICS, SD_YOU):
            rows.setdefault(f.backend, Row(f.backend)).tests[f.test] = f
    return list(rows.values())


def _name_columns(rows: Sequence[Row]) -> tuple[list[Column], list[list[str]]]:
    """The model, and the backend too when two rows would otherwise read the same."""
    models = [model_name(r.any.model) for r in rows]
    if len(set(models)) == len(models):
        return [("model", "<")], [[m] for m in models]
    return [("model", "<"), ("backend", "<")], [
        [m, backend_name(r.backend)] for m, r in zip(models, rows, strict=True)
    ]


def _fit_names(names: list[list[str]], room: int) -> list[list[str]]:
    """Cut the names to share `room` columns: the backend up to half, the model the rest."""
    if not names or len(names[0]) == 1:
        return [[cut(n[0], max(room, MIN_NAME))] for n in names]
    backend = min(max(cells(n[1]) for n in names), max(room // 2, 8), 22)
    model = max(room - backend, MIN_NAME)
    return [[cut(m, model), cut(b, backend)] for m, b in names]


SEED: list[Column] = [
    ("contextsize", ">"),
    ("gpulayers", ">"),
    (BIOTICS, ">"),
    (SD_YOU, ">"),
]
RATES: list[Column] = [
    ("prompt", ">"),
    ("prompt/s", ">"),
    ("1st token", ">"),
    ("gen/s", ">"),
    ("pipe ms", ">"),
]
RATES_NOTE = (
    "biotics: prompt = tokens the server counted, /s = tokens a second,\n"
    "1st token = time to the first token, pipe ms = a request's time outside the\n"
    "server's own figures: pipe, HTTP and what the server does not count (its set-up)"
)


def _seed_cells(row: Row) -> list[str]:
    return [
        setting(row.first(lambda f: f.context_size)),
        setting(row.first(lambda f: f.gpu_layers)),
        seconds(row.tests[BIOTICS].seconds) if BIOTICS in row.tests else UNKNOWN,
        seconds(row.tests[SD_YOU].seconds) if SD_YOU in row.tests else UNKNOWN,
    ]


def _rate_cells(f: Figures) -> list[str]:
    return [
        count(f.prompt_tokens),
        rate(f.prompt_per_second),
        seconds(f.first_token_seconds),
        rate(f.generated_per_second),
        rate(f.overhead_ms),
    ]


def render_table(figures: list[Figures], width: int | None = None) -> str:
    """The seed's table (one row per backend: model, contextsize, gpulayers, biotics and /sd
    you seconds), then the biotics rates in a second table with the same names: together
    they would not fit 80 columns. `width` (default 80) is what names are cut to fit."""
    rows = backend_rows(figures)
    if not rows:
        return "no bench figures\n"
    limit = width or WIDTH
    name_cols, names = _name_columns(rows)
    seed_rows = [_seed_cells(r) for r in rows]
    rated = [(n, r.tests[BIOTICS]) for n, r in zip(names, rows, strict=True) if BIOTICS in r.tests]
    rate_rows = [_rate_cells(f) for _, f in rated]
    room = min(
        name_room(limit, SEED, seed_rows),
        name_room(limit, RATES, rate_rows) if rated else limit,
    ) - 3 * (len(name_cols) - 1)
    names = _fit_names(names, room)
    lines = markdown(name_cols + SEED, [n + c for n, c in zip(names, seed_rows, strict=True)])
    if any(any(c != UNKNOWN for c in cells_) for cells_ in rate_rows):
        rate_names = [n for n, r in zip(names, rows, strict=True) if BIOTICS in r.tests]
        table = markdown(
            name_cols + RATES, [n + c for n, c in zip(rate_names, rate_rows, strict=True)]
        )
        lines += ["", *table, "", RATES_NOTE]
    return "\n".join(lines) + "\n"


# --- history -------------------------------------------------------------------------------

SAME = 0.02  # changes under 2% are noise between two runs of the same box


def change(previous: Figures | None, now: Figures) -> str:
    """How this run compares with the one before on the same backend, model and test:
    seconds, so "faster" is what a person hopes for."""
    if previous is None:
        return "first run"
    if previous.model != now.model:
        return "new model"
    if (previous.width, previous.height, previous.steps) != (now.width, now.height, now.steps):
        return "other size"  # a quick --size/--steps run is not the box getting faster
    before, after = previous.seconds, now.seconds
    if not (_known(before) and _known(after)) or before <= 0 or after < 0:
        return UNKNOWN
    ratio = after / before - 1
    if abs(ratio) < SAME:
        return "= same"
    word = "slower" if ratio > 0 else "faster"
    return f"{'▲' if ratio > 0 else '▼'} {abs(ratio):.0%} {word}"


HISTORY: dict[str, list[Column]] = {
    BIOTICS: [("seconds", ">"), ("prompt/s", ">"), ("gen/s", ">"), ("change", "<")],
    SD_YOU: [("seconds", ">"), ("size", ">"), ("steps", ">"), ("change", "<")],
}


def _history_cells(f: Figures, previous: Figures | None) -> list[str]:
    if f.test == BIOTICS:
        figures = [rate(f.prompt_per_second), rate(f.generated_per_second)]
    else:
        size = f"{f.width}×{f.height}" if f.width and f.height else UNKNOWN
        figures = [size, setting(f.steps)]
    return [when(f.at), seconds(f.seconds), *figures, change(previous, f)]


def _history_table(backend: str, test: str, runs: list[Figures]) -> list[str]:
    """One backend and test over time; the model in the heading while it stays the same,
    in a column once it changes."""
    last: dict[str, Figures] = {}  # the previous run of each model
    rows = []
    for i, f in enumerate(runs):
        # against the model's own last run; a model new here, against the run before it
        previous = last.get(f.model) or (runs[i - 1] if i else None)
        rows.append(_history_cells(f, previous))
        last[f.model] = f
    columns = [("date (UTC)", "<"), *HISTORY[test]]
    heading = f"{test} on {cut(backend_name(backend), 30)}"
    models = [model_name(f.model) for f in runs]
    if len(set(models)) == 1:
        return [
            f"{heading}: {cut(models[0], WIDTH - cells(heading) - 2)}",
            "",
            *markdown(columns, rows),
        ]
    room = max(name_room(WIDTH, columns, rows), MIN_NAME)
    rows = [[r[0], cut(m, room), *r[1:]] for r, m in zip(rows, models, strict=True)]
    return [heading, "", *markdown([columns[0], ("model", "<"), *columns[1:]], rows)]


def render_history(figures: list[Figures]) -> str:
    """Each backend's figures over time, one table per backend and test, in the order the
    store gives them (newest last), each run against the one before on the same model."""
    groups: dict[tuple[str, str], list[Figures]] = {}
    for f in figures:
        if f.test in HISTORY:
            groups.setdefault((f.backend, f.test), []).append(f)
    if not groups:
        return "no bench figures kept yet: run pipe bench\n"
    tables = [_history_table(backend, test, runs) for (backend, test), runs in groups.items()]
    return "\n\n".join("\n".join(t) for t in tables) + "\n"
