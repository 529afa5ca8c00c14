"""What `pipe bench` leaves behind when asked: the chart, written as every output of pipe's
is (`actions.base.write_output`), so it replaces only a chart pipe wrote there before."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.actions.base import OutputLog, check_replaceable, write_output
from pipeline.bench.chart import draw_chart
from pipeline.bench.figures import Figures


def write_chart(figures: list[Figures], target: Path, outputs: OutputLog) -> None:
    """Draw the chart away from the user's folders, then put it at `target` (ActionError,
    one line, if a file pipe did not write is there)."""
    check_replaceable(outputs, str(target))  # before the drawing, as after it
    with tempfile.TemporaryDirectory(prefix="pipe-chart-") as folder:
        drawn = Path(folder) / "chart.png"
        draw_chart(figures, drawn)
        write_output(outputs, str(target), drawn.read_bytes())
