"""STAND-IN until the real chart lands (another engineer writes it): the name and shape
`pipe bench --chart` calls, one grey bar per figure."""

from __future__ import annotations

from pathlib import Path

from pipeline.bench.figures import Figures


def draw_chart(figures: list[Figures], path: Path, size: tuple[int, int] = (1200, 700)) -> None:
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    longest = max((f.seconds for f in figures), default=1.0) or 1.0
    bar = max(1, (height - 20) // max(1, len(figures)))
    for i, f in enumerate(figures):
        length = int((width - 20) * f.seconds / longest)
        top = 10 + i * bar
        draw.rectangle([10, top, 10 + length, top + bar - 4], fill="grey")
        draw.text((14, top), f"{f.backend} {f.test} {f.seconds:.2f}s", fill="black")
    image.save(path, "PNG")
