"""`pipe bench --chart`: a PNG of the size asked for that shows the figures (bars longer for
bigger values, several colours), for one backend and for twelve, written whole, replacing
only a chart pipe drew."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from pipeline.bench.chart import PANELS, draw_chart
from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from tests.conftest import ROOT

BLUE, ORANGE, GREEN = (p.colour for p in PANELS)  # biotics, /sd you, tokens a second
AT = "2026-12-03T19:30:00+00:00"


def biotics(port: int, seconds: float, model: str = "", per_second: float | None = 30.0) -> Figures:
    return Figures(
        BIOTICS,
        f"http://127.0.0.1:{port}",
        "llama.cpp",
        model or f"model-{port}.Q4_K_M",
        seconds,
        AT,
        generated_per_second=per_second,
    )


def sd_you(port: int, seconds: float) -> Figures:
    return Figures(SD_YOU, f"http://127.0.0.1:{port}", "koboldcpp", f"model-{port}", seconds, AT)


def bars(image: Image.Image, colour: tuple[int, int, int]) -> list[int]:
    """The length in pixels of each bar of `colour`, top to bottom."""
    width, height = image.size
    pixels = image.load()
    lengths: list[int] = []
    inside = False
    for y in range(height):
        run = sum(1 for x in range(width) if pixels[x, y] == colour)
        if run and not inside:
            lengths.append(run)
        elif run:
            lengths[-1] = max(lengths[-1], run)
        inside = bool(run)
    return lengths


def opened(path: Path, size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        assert image.mode == "RGB"
        image.load()
        return image.copy()


def test_one_backend_is_a_png_of_the_size_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "bench.png"
    draw_chart([biotics(5001, 19.0), sd_you(5001, 50.0)], path)
    image = opened(path, (1200, 700))
    assert len(image.getcolors(1 << 16) or []) > 20  # text's shades, bars, bands: not blank
    assert len(bars(image, BLUE)) == 1 and len(bars(image, ORANGE)) == 1
    assert len(bars(image, GREEN)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["bench.png"]  # no temporary file left


def test_twelve_backends_each_get_a_bar_as_long_as_its_figure(tmp_path: Path) -> None:
    seconds = [3.0, 40.0, 12.0, 0.5, 25.0, 7.0, 60.0, 18.0, 33.0, 1.5, 50.0, 9.0]
    figures = [biotics(5000 + n, s, per_second=100 / (n + 1)) for n, s in enumerate(seconds)]
    figures += [sd_you(5000, 80.0), sd_you(5005, 20.0)]
    path = tmp_path / "bench.png"
    draw_chart(figures, path, size=(1000, 600))
    image = opened(path, (1000, 600))
    blue = bars(image, BLUE)
    assert len(blue) == 12
    assert sorted(range(12), key=lambda n: blue[n]) == sorted(range(12), key=lambda n: seconds[n])
    assert blue[6] > 10 * blue[3]  # 60s against 0.5s, on one linear scale
    assert bars(image, ORANGE)[0] > 3 * bars(image, ORANGE)[1]
    green = bars(image, GREEN)
    assert len(green) == 12 and green == sorted(green, reverse=True)


def test_missing_zero_huge_and_very_long_names_still_draw(tmp_path: Path) -> None:
    long = "x" * 400 + "\x1b]0;owned\x07|\n" + "あ" * 50
    figures = [
        biotics(5001, 0.0, model=long, per_second=None),
        biotics(5002, 1e9, per_second=float("nan")),
        biotics(5003, float("inf")),
        Figures(BIOTICS, "embedded", "embedded", "", 2.0),
    ]
    for size in [(1200, 700), (320, 200), (2400, 300)]:
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        draw_chart(figures, path, size=size)
        assert len(bars(opened(path, size), BLUE)) >= 2  # zero is a sliver, huge the longest


def test_nothing_to_show_is_still_a_chart(tmp_path: Path) -> None:
    draw_chart([], tmp_path / "empty.png")
    opened(tmp_path / "empty.png", (1200, 700))


def test_importing_the_chart_loads_no_image_code() -> None:
    code = "import sys, pipeline.bench.chart, pipeline.bench.table; print('PIL' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
