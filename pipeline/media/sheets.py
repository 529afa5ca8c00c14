"""Contact sheets: a run's pictures in a grid, each named, so a batch is seen at a glance.

A sheet holds at most `columns x rows` pictures (10 x 10 by default); a bigger batch gets
more sheets, `sheet.jpg`, `sheet-2.jpg`, `sheet-3.jpg` ..., each the same width, so 1,000
pictures are ten pages of a hundred recognisable thumbnails rather than one picture too tall
for any viewer. A batch that fits on one sheet and is shorter than a row gets a sheet just
as wide as it needs.

Memory stays bounded whatever the batch: pictures are read one at a time, each shrunk as
it is decoded (JPEG draft, libvips, the shared pixel budget, through `prepare_image`) to at
most `cell` pixels a side; a sheet holds only its own thumbnails, at most about
2 x columns x rows x cell² x 3 bytes (40 MB at the defaults) and its encoded file, and the
items are consumed lazily, a sheet written as soon as it is full.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from pipeline.media.budget import DECODING
from pipeline.media.decoding import flatten, to_plain_mode
from pipeline.media.formats import ImageError, StrPath, one_line, open_formats
from pipeline.media.images import check_pixels, prepare_image
from pipeline.media.pillow_source import DAMAGE

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)
PLACEHOLDER = (72, 72, 72)
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 85},
    "PNG": {},
    "WEBP": {"quality": 85},
}
# A sheet past this many pixels is no longer something to look at (nor cheap to hold).
MAX_SHEET_PIXELS = 64_000_000
ELLIPSIS = "…"


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a sheet of `cell`-pixel thumbnails."""

    cell: int

    @cached_property
    def font(self) -> Font:
        return _font(max(10, self.cell // 18))

    @property
    def pad(self) -> int:
        return max(4, self.cell // 32)

    @cached_property
    def label_height(self) -> int:
        ascent, descent = self.font.getmetrics()
        return ascent + descent + self.pad

    @property
    def pitch(self) -> tuple[int, int]:
        """From one cell's corner to the next, across and down."""
        return self.cell + self.pad, self.cell + self.label_height + self.pad

    def size(self, columns: int, rows: int) -> tuple[int, int]:
        return self.pad + columns * self.pitch[0], self.pad + rows * self.pitch[1]

    def picture_box(self, columns: int, index: int) -> tuple[int, int, int, int]:
        """The square a thumbnail is centred in."""
        x = self.pad + index % columns * self.pitch[0]
        y = self.pad + index // columns * self.pitch[1]
        return x, y, x + self.cell, y + self.cell

    def label_box(self, columns: int, index: int) -> tuple[int, int, int, int]:
        """The band under the thumbnail its name is written in."""
        x0, _, x1, y1 = self.picture_box(columns, index)
        return x0, y1, x1, y1 + self.label_height


def contact_sheet(
    items: Iterable[tuple[str, StrPath | bytes]],
    out_path: StrPath,
    columns: int = 10,
    cell: int = 256,
    rows: int = 10,
    save: Callable[[Path, bytes], None] | None = None,
) -> list[Path]:
    """Draw `items` (name, picture file or its bytes) as a grid, each name under its picture,
    into `out_path` (.jpg, .jpeg, .png or .webp) and, past `columns x rows` pictures, into
    `<stem>-2<ext>`, `<stem>-3<ext>` ... Returns the sheets written, in order: none for no
    items (older pages of an earlier, longer run are left alone: the list says which are
    this run's).

    A picture that cannot be read gets a grey cell saying why, never an error. Each sheet
    is written whole or not at all (a temporary file beside it, then renamed over it), or
    handed to `save` (page path, encoded bytes), which then decides whether and how.
    """
    out = Path(out_path)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"contact sheet must be .jpg, .png or .webp, not {out.name!r}")
    if not 1 <= columns <= 100 or not 1 <= rows <= 100:
        raise ValueError(f"columns and rows must be 1..100, got {columns} and {rows}")
    if not 32 <= cell <= 1024:
        raise ValueError(f"cell must be 32..1024 pixels, got {cell}")
    layout = SheetLayout(cell)
    width, height = layout.size(columns, rows)
    if width * height > MAX_SHEET_PIXELS:
        raise ValueError(
            f"a {columns}x{rows} sheet of {cell} px cells would be {width}x{height} pixels; "
            f"use fewer columns or rows, or smaller cells"
        )
    write = save or _write
    written: list[Path] = []
    page: list[tuple[str, Image.Image | str]] = []  # (name, thumbnail or why it is missing)
    for name, source in items:
        page.append((name, _thumbnail(source, cell)))
        if len(page) == columns * rows:
            written.append(_page_path(out, len(written)))
            write(written[-1], _encode(_draw(page, layout, columns), fmt))
            page = []
    if page:
        # A batch smaller than one row: only as wide as it needs.
        across = min(columns, len(page)) if not written else columns
        written.append(_page_path(out, len(written)))
        write(written[-1], _encode(_draw(page, layout, across), fmt))
    return written


def sheet_pages(out_path: StrPath, count: int, columns: int = 10, rows: int = 10) -> list[Path]:
    """The files `contact_sheet` writes for `count` pictures: known before drawing any, so
    a caller can check every page's place first."""
    pages = math.ceil(count / (columns * rows))
    return [_page_path(Path(out_path), n) for n in range(pages)]


def _page_path(out: Path, n: int) -> Path:
    return out if n == 0 else out.with_name(f"{out.stem}-{n + 1}{out.suffix}")


def _thumbnail(source: StrPath | bytes, cell: int) -> Image.Image | str:
    """The picture as RGB within cell x cell, upright; or a short reason it cannot be read."""
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return _thumbnail_of_bytes(bytes(source), cell)
        prepared = prepare_image(source, max_side=cell, quality=90)
        with Image.open(io.BytesIO(prepared.jpeg), formats=["JPEG"]) as im:
            return im.convert("RGB")
    except ImageError as e:
        return str(e)
    except (*DAMAGE, Image.DecompressionBombError, MemoryError) as e:
        return one_line(e)


def _thumbnail_of_bytes(data: bytes, cell: int) -> Image.Image:
    """For pictures held in memory (what the image backend answered)."""
    with Image.open(io.BytesIO(data), formats=open_formats()) as im:
        check_pixels(*im.size)
        with DECODING.use(im.width * im.height):
            im.draft("RGB", (cell, cell))  # a JPEG decodes at 1/2..1/8 scale
            upright = to_plain_mode(ImageOps.exif_transpose(im))
            upright.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            return flatten(upright)


def _draw(
    page: list[tuple[str, Image.Image | str]], layout: SheetLayout, columns: int
) -> Image.Image:
    sheet = Image.new("RGB", layout.size(columns, math.ceil(len(page) / columns)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = layout.font
    for index, (name, thumb) in enumerate(page):
        x0, y0, x1, y1 = layout.picture_box(columns, index)
        if isinstance(thumb, Image.Image):
            sheet.paste(
                thumb,
                (x0 + (layout.cell - thumb.width) // 2, y0 + (layout.cell - thumb.height) // 2),
            )
        else:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=PLACEHOLDER)
            middle = (x0 + x1) // 2
            draw.text((middle, (y0 + y1) // 2), "unreadable", font=font, fill=TEXT, anchor="md")
            why = fit_label(thumb, font, layout.cell - 2 * layout.pad)
            draw.text((middle, (y0 + y1) // 2 + layout.pad), why, font=font, fill=TEXT, anchor="ma")
        lx0, ly0, lx1, _ = layout.label_box(columns, index)
        label = fit_label(name, font, layout.cell)
        draw.text(
            ((lx0 + lx1) // 2, ly0 + layout.pad // 2), label, font=font, fill=TEXT, anchor="ma"
        )
    return sheet


def _encode(sheet: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sheet.save(buffer, fmt, **_SAVE_OPTIONS[fmt])
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    """All of the sheet or nothing: written beside its place, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- names ----------------------------------------------------------------------------------

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe_name(name: str) -> str:
    """`name` with anything that is not a visible character written as an escape: control
    characters, bidirectional overrides (which could make "gpj.exe" read as "exe.jpg"),
    line breaks, and the lone surrogates that stand for undecodable bytes in file names."""
    out = []
    for c in name:
        code = ord(c)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def fit_label(name: str, font: Font, width: int) -> str:
    """`name` made safe (see `safe_name`), shortened in the middle with "…" to fit `width`
    pixels: both the start of a file name and its number and extension stay readable."""
    text = safe_name(name)
    ellipsis = ELLIPSIS
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow without FreeType: Latin-1 only
        text, ellipsis = text.encode("latin-1", "replace").decode("latin-1"), "..."
    if font.getlength(text) <= width:
        return text
    # The most characters kept (half from each end) that still fit; none fit is just "…".
    low, high = 0, len(text) - 1
    while low < high:
        keep = (low + high + 1) // 2
        if font.getlength(_middle(text, keep, ellipsis)) <= width:
            low = keep
        else:
            high = keep - 1
    return _middle(text, low, ellipsis)


def _middle(text: str, keep: int, ellipsis: str) -> str:
    head = (keep + 1) // 2
    return text[:head] + ellipsis + text[len(text) - (keep - head) :]


def _font(size: int) -> Font:
    """Pillow's own font, no font file to find on the system (a Pillow built without FreeType
    gives its small bitmap font, whatever the size)."""
    return ImageFont.load_default(size=size)
