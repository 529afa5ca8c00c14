"""What `pipe bench` leaves behind when asked: the chart, written as every output of pipe's
is (`actions.base.write_output`), so it replaces only a chart pipe wrote there before."""

from __future__ import annotations

from pathlib import Path

from pipeline.actions.base import OutputLog, check_replaceable, write_output
from pipeline.bench.chart import png
from pipeline.bench.figures import Figures


def write_chart(
    figures: list[Figures], target: Path, outputs: OutputLog, size: tuple[int, int]
) -> None:
    """The chart at `target` (ActionError, one line, if a file pipe did not write is there)."""
    check_replaceable(outputs, str(target))  # before the drawing, as after it
    write_output(outputs, str(target), png(figures, size))
