"""`pipe bench --chart FILE.png`: the table as a picture a person would rather look at. One
row per backend (its model, and where it runs), one panel per figure: biotics seconds, /sd
you seconds a picture, generated tokens a second; a bar and its value in each, each panel
scaled to its own largest value.

Drawn with Pillow, already a dependency and imported only inside `draw_chart` (so `pipe
--help` loads no image code): bars, text and a title need nothing a plotting library adds,
and matplotlib would be a new dependency (with numpy, fonttools, kiwisolver, ...) slow to
install and import for the same picture. Pillow ≥ 10.1 draws its bundled FreeType font
(Aileron) at any size with `load_default(size=...)`; it has Latin, not CJK glyphs.

The file is written through a temporary file in the same folder and os.replace, so a reader
never sees half a chart. A file already at the path is replaced only if it is a chart pipe
drew (its PNG text says so): `pipe bench --chart bench.png` run every week keeps one fresh
chart, while a typo that names someone's photo or notes stops with one line instead."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.bench.table import (
    Row,
    backend_name,
    backend_rows,
    cut,
    model_name,
    rate,
    seconds,
    when,
)
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

SOFTWARE = "pipe bench"  # the PNG text that marks a chart pipe drew (and may replace)

INK = (34, 38, 46)
GREY = (120, 126, 136)
FAINT = (244, 245, 248)
RULE = (214, 218, 224)
PAPER = (255, 255, 255)
NOT_KNOWN = "n/a"  # the table's "–" is not in the bundled font


def drawable(text: str) -> str:
    """A table's safe name as the chart draws it: a `|` breaks no column here, and the
    bundled font has no "¦"."""
    return text.replace("¦", "|")


@dataclass(frozen=True)
class Panel:
    title: str
    value: Callable[[Row], float | None]
    shown: Callable[[float | None], str]
    colour: tuple[int, int, int]


def _figure(test: str, pick: Callable[[Figures], float | None]) -> Callable[[Row], float | None]:
    def value(row: Row) -> float | None:
        f = row.tests.get(test)
        v = pick(f) if f is not None else None
        return v if v is not None and v == v and 0 <= v < float("inf") else None

    return value


PANELS = (
    Panel("biotics: seconds", _figure(BIOTICS, lambda f: f.seconds), seconds, (59, 111, 216)),
    Panel(
        "/sd you: seconds a picture", _figure(SD_YOU, lambda f: f.seconds), seconds, (224, 123, 57)
    ),
    Panel(
        "generated tokens a second",
        _figure(BIOTICS, lambda f: f.generated_per_second),
        rate,
        (58, 154, 91),
    ),
)


def _font(size: float) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=max(int(size), 8))  # type: ignore[return-value]


def fit(text: str, font: ImageFont.FreeTypeFont, pixels: float) -> str:
    """`text` cut (in the middle, as the table cuts) to fit `pixels`."""
    if font.getlength(text) <= pixels:
        return text
    low, high = 1, len(text)
    while low < high:  # the longest cut that fits
        mid = (low + high + 1) // 2
        if font.getlength(cut(text, mid)) <= pixels:
            low = mid
        else:
            high = mid - 1
    return cut(text, low)


def _title(figures: Sequence[Figures]) -> str:
    times = sorted(f.at for f in figures if f.at)
    stamp = when(times[-1]) if times else datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return f"pipe bench · {stamp} UTC"


@dataclass(frozen=True)
class Layout:
    """Where everything goes, from the picture's size and the number of rows."""

    width: int
    height: int
    rows: int
    panels: int

    @property
    def unit(self) -> float:  # text scales with the picture, rows shrink as they multiply
        return min(self.width / 1200, self.height / 700) * 20

    @property
    def row_height(self) -> float:
        return min((self.bottom - self.unit * 5.4) / max(self.rows, 1), self.unit * 4.5)

    @property
    def top(self) -> float:
        """Where the first row starts: a few rows sit in the middle, not in a top strip."""
        free = self.bottom - self.unit * 5.4 - self.rows * self.row_height
        return self.unit * 5.4 + free / 3

    @property
    def bottom(self) -> float:
        return self.height - self.unit * 1.8

    @property
    def label_width(self) -> float:
        return self.width * (0.30 if self.panels > 1 else 0.38)

    def panel(self, i: int) -> tuple[float, float]:
        """The left and right edges of panel `i`."""
        margin = self.unit
        room = (self.width - self.label_width - margin) / self.panels
        left = self.label_width + i * room
        return left + margin * 0.5, left + room - margin * 0.5


def _label(draw: ImageDraw.ImageDraw, row: Row, layout: Layout, n: int) -> None:
    """The model, and under it the backend (one line when rows are thin), cut to fit."""
    x, y, height = layout.unit, layout.top + n * layout.row_height, layout.row_height
    room = layout.label_width - layout.unit * 1.5
    size = min(height * 0.34, layout.unit * 1.1)
    model, where = drawable(model_name(row.any.model)), drawable(backend_name(row.backend))
    if height >= size * 2.6:
        big, small = _font(size), _font(size * 0.78)
        draw.text((x, y + height / 2), fit(model, big, room), font=big, fill=INK, anchor="ls")
        where_y = y + height / 2 + size * 0.95
        draw.text((x, where_y), fit(where, small, room), font=small, fill=GREY, anchor="ls")
    else:
        font = _font(min(height * 0.6, layout.unit * 1.1))
        text = fit(f"{model} · {where}", font, room)
        draw.text((x, y + height / 2), text, font=font, fill=INK, anchor="lm")


def _bars(
    draw: ImageDraw.ImageDraw, panel: Panel, rows: Sequence[Row], layout: Layout, i: int
) -> None:
    """One panel: its title, then a bar and its value per row, scaled to the largest."""
    left, right = layout.panel(i)
    head = _font(layout.unit * 0.85)
    draw.text((left, layout.top - layout.unit * 0.7), panel.title, font=head, fill=INK, anchor="ls")
    values = [panel.value(r) for r in rows]
    top = max((v for v in values if v is not None), default=0.0)
    font = _font(min(layout.row_height * 0.38, layout.unit * 0.9))
    reserve = max(font.getlength(panel.shown(v)) for v in [*values, top]) + layout.unit * 0.6
    span = max(right - left - reserve, 1.0)
    for n, value in enumerate(values):
        y = layout.top + n * layout.row_height
        middle = y + layout.row_height / 2
        if value is None:
            draw.text((left + 2, middle), NOT_KNOWN, font=font, fill=GREY, anchor="lm")
            continue
        length = span * value / top if top > 0 else 0.0
        thick = layout.row_height * 0.56
        draw.rectangle(
            (left, middle - thick / 2, left + max(length, 2.0), middle + thick / 2),
            fill=panel.colour,
        )
        end, text = left + max(length, 2.0), panel.shown(value)
        if end + layout.unit * 0.3 + font.getlength(text) <= right:
            draw.text((end + layout.unit * 0.3, middle), text, font=font, fill=INK, anchor="lm")
        else:  # a picture too small for the value beside its bar: inside the bar's end
            draw.text((end - layout.unit * 0.3, middle), text, font=font, fill=PAPER, anchor="rm")
    draw.line((left, layout.top, left, layout.top + len(rows) * layout.row_height), fill=RULE)


def render(figures: Sequence[Figures], size: tuple[int, int]) -> Any:
    """The chart as a Pillow image (RGB, exactly `size`)."""
    from PIL import Image, ImageDraw

    width, height = size
    if width < 1 or height < 1:
        raise UsageError(f"a chart needs a size, not {width}x{height}")
    rows = backend_rows(figures)
    panels = [p for p in PANELS if any(p.value(r) is not None for r in rows)] or list(PANELS[:1])
    layout = Layout(width, height, len(rows), len(panels))
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    draw.text(
        (layout.unit, layout.unit * 1.2), _title(figures), font=_font(layout.unit * 1.3), fill=INK
    )
    for n in range(len(rows)):  # bands: the eye follows a row across the panels
        y = layout.top + n * layout.row_height
        if n % 2 == 0:
            draw.rectangle((0, y, width, y + layout.row_height), fill=FAINT)
    for n, row in enumerate(rows):
        _label(draw, row, layout, n)
    for i, panel in enumerate(panels):
        _bars(draw, panel, rows, layout, i)
    note = (
        f"seconds: shorter is faster · tokens a second: longer is faster · {NOT_KNOWN}: not known"
    )
    small = _font(layout.unit * 0.7)
    draw.text(
        (layout.unit, height - layout.unit * 0.6),
        fit(note, small, width),
        font=small,
        fill=GREY,
        anchor="ls",
    )
    return image


def png(figures: Sequence[Figures], size: tuple[int, int] = (1200, 700)) -> bytes:
    """The figures drawn as PNG bytes of exactly `size`, marked as pipe's drawing."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    data = io.BytesIO()
    render(figures, size).save(data, "PNG", pnginfo=info, optimize=True)
    return data.getvalue()


def draw_chart(figures: list[Figures], path: Path, size: tuple[int, int] = (1200, 700)) -> None:
    """The chart at `path` (a new file of the caller's: `pipe bench --chart` writes through
    `actions.base.write_output`, which replaces only what pipe wrote)."""
    path.write_bytes(png(figures, size))
