"""Charts for the PDFs, drawn with reportlab.graphics (vector, fast, no matplotlib import).

Each function returns a `Drawing`, which platypus lays out like any other flowable. Labels and
cell values are real PDF text, so they stay searchable and extractable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

from domain.reports.fmt import num

WIDTH = 480
HEIGHT = 170
SERIES_COLOURS = (
    colors.HexColor("#1f5f8b"),
    colors.HexColor("#d9822b"),
    colors.HexColor("#3c8d40"),
    colors.HexColor("#a23b72"),
)
#: Heat map scale, from the nearest surface (thick liver, short flight) to the tray.
NEAR = colors.HexColor("#b2182b")
FAR = colors.HexColor("#f7f7f7")

Series = tuple[str, Sequence[tuple[float, float]]]


def _placed(chart: Any, width: int, height: int) -> Any:
    """The chart's plot area inside its drawing: room for the axis labels and the title."""
    chart.x, chart.y = 45, 30
    chart.width, chart.height = width - 60, height - 65
    return chart


def _title(drawing: Drawing, text: str) -> None:
    drawing.add(String(0, drawing.height - 12, text, fontName="Helvetica-Bold", fontSize=10))


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str,
    x_format: Callable[[float], str] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Drawing:
    """One or more (x, y) series; `x_format` labels the x axis (days, dates)."""
    drawing = Drawing(width, height)
    _title(drawing, title)
    plot = _placed(LinePlot(), width, height)
    plot.data = [list(points) for _, points in series] or [[(0, 0)]]
    for index in range(len(plot.data)):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        plot.lines[index].strokeColor = colour
        plot.lines[index].strokeWidth = 1.5
        if len(plot.data[index]) <= 40:
            plot.lines[index].symbol = makeMarker("FilledCircle", size=3, fillColor=colour)
    plot.xValueAxis.labels.fontSize = 7
    plot.yValueAxis.labels.fontSize = 7
    if x_format is not None:
        plot.xValueAxis.labelTextFormat = x_format
    drawing.add(plot)
    drawing.add(String(0, height - 24, y_label, fontName="Helvetica", fontSize=7))
    if len(series) > 1:
        legend = Legend()
        legend.x, legend.y = width - 150, height - 10
        legend.fontSize = 7
        legend.colorNamePairs = [
            (SERIES_COLOURS[i % len(SERIES_COLOURS)], name) for i, (name, _) in enumerate(series)
        ]
        legend.columnMaximum = 1
        legend.alignment = "right"
        drawing.add(legend)
    return drawing


def bar_chart(
    title: str,
    categories: Sequence[str],
    values: Sequence[float],
    *,
    y_label: str,
    counts: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Drawing:
    """One bar per category; `counts` keeps the value axis on whole numbers."""
    drawing = Drawing(width, height)
    _title(drawing, title)
    chart = _placed(VerticalBarChart(), width, height)
    chart.data = [list(values) or [0]]
    chart.categoryAxis.categoryNames = list(categories) or [""]
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 30 if len(categories) > 8 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(categories) > 8 else "n"
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    if counts:
        step = _count_step(max(values, default=0))
        chart.valueAxis.valueStep = step
        chart.valueAxis.valueMax = step * max(1, math.ceil(max(values, default=0) / step))
    chart.bars[0].fillColor = SERIES_COLOURS[0]
    chart.barLabelFormat = "%g" if len(categories) <= 12 else None
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6
    drawing.add(chart)
    drawing.add(String(0, height - 24, y_label, fontName="Helvetica", fontSize=7))
    return drawing


def _count_step(top: float) -> int:
    """A round axis step (1, 2, 5, 10, 20, 50...) giving about five ticks up to `top`."""
    raw = max(top / 5, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))


def _blend(value: float, low: float, high: float) -> colors.Color:
    share = 0.0 if high <= low else (value - low) / (high - low)
    return colors.linearlyInterpolatedColor(NEAR, FAR, 0.0, 1.0, share)


def heat_map(title: str, grid: Sequence[Sequence[float]], *, cell: int = 34) -> Drawing:
    """An 8x8 grid of coloured cells holding their value: the mean time-of-flight map (mm)."""
    rows, columns = len(grid), len(grid[0]) if grid else 0
    width, height = columns * cell + 130, rows * cell + 40
    drawing = Drawing(width, height)
    _title(drawing, title)
    values = [value for row in grid for value in row]
    low, high = min(values, default=0.0), max(values, default=0.0)
    top = height - 22
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            x, y = c * cell, top - (r + 1) * cell
            fill = _blend(value, low, high)
            drawing.add(Rect(x, y, cell, cell, fillColor=fill, strokeColor=colors.white))
            ink = colors.white if fill.green < 0.45 else colors.black
            drawing.add(
                String(
                    x + cell / 2,
                    y + cell / 2 - 3,
                    num(value),
                    fontSize=7,
                    textAnchor="middle",
                    fillColor=ink,
                )
            )
    legend_x = columns * cell + 15
    drawing.add(Rect(legend_x, top - 20, 14, 14, fillColor=NEAR, strokeColor=None))
    drawing.add(String(legend_x + 20, top - 16, f"{num(low)} mm (foie épais)", fontSize=7))
    drawing.add(Rect(legend_x, top - 40, 14, 14, fillColor=FAR, strokeColor=colors.grey))
    drawing.add(String(legend_x + 20, top - 36, f"{num(high)} mm (plateau)", fontSize=7))
    return drawing
