"""The console's charts: small inline SVG drawn here, on the server, from the per-minute counters
(runtime.recent_minutes). No chart library, no script: a fragment swap redraws them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from runtime import Minute

#: Outcome -> bar colour (each >= 3:1 against white, WCAG's contrast for graphics).
OUTCOME_COLOURS = {
    "SUCCESS": "#2f7d32",
    "RETRY": "#a16207",
    "FAILURE": "#b91c1c",
    "REVOKED": "#6b21a8",
}
WIDTH, HEIGHT, LEFT, BOTTOM = 640, 140, 48, 18
SPARK_WIDTH, SPARK_HEIGHT = 180, 28


@dataclass(frozen=True)
class Chart:
    """An SVG and the sentence a screen reader gets instead of it."""

    svg: Markup
    summary: str


def _frame(label: str, body: str, top: str, minutes: int) -> Markup:
    plot_bottom = HEIGHT - BOTTOM
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH}" y2="{plot_bottom}" class="axis"/>'
        f'<text x="{LEFT - 4}" y="12" text-anchor="end">{escape(top)}</text>'
        f'<text x="{LEFT - 4}" y="{plot_bottom}" text-anchor="end">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 4}">-{minutes} min</text>'
        f'<text x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">now</text>'
        f"{body}</svg>"
    )


def outcomes_chart(minutes: Sequence[Minute]) -> Chart:
    """Attempts ended per minute, stacked by outcome."""
    top = max((m.total for m in minutes), default=0) or 1
    step = (WIDTH - LEFT) / max(len(minutes), 1)
    scale = (HEIGHT - BOTTOM - 14) / top
    bars = []
    for i, minute in enumerate(minutes):
        y: float = HEIGHT - BOTTOM
        for outcome, colour in OUTCOME_COLOURS.items():
            count = minute.outcomes.get(outcome, 0)
            if not count:
                continue
            height = count * scale
            y -= height
            bars.append(
                f'<rect x="{LEFT + i * step + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}"'
                f' height="{height:.1f}" fill="{colour}"><title>{count} {outcome}</title></rect>'
            )
    totals = {o: sum(m.outcomes.get(o, 0) for m in minutes) for o in OUTCOME_COLOURS}
    summary = ", ".join(f"{n} {o}" for o, n in totals.items())
    label = f"Attempts ended per minute over the last {len(minutes)} minutes: {summary}"
    return Chart(_frame(label, "".join(bars), f"{top}/min", len(minutes)), summary)


def line_chart(values: Sequence[float | None], *, label: str, unit: str) -> Chart:
    """A line through the minutes that have a value (gaps where none)."""
    known = [v for v in values if v is not None]
    top = max(known, default=0) or 1
    step = (WIDTH - LEFT) / max(len(values) - 1, 1)
    scale = (HEIGHT - BOTTOM - 14) / top
    points = " ".join(
        f"{LEFT + i * step:.1f},{HEIGHT - BOTTOM - v * scale:.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    dots = "".join(
        f'<circle cx="{LEFT + i * step:.1f}" cy="{HEIGHT - BOTTOM - v * scale:.1f}" r="2"/>'
        for i, v in enumerate(values)
        if v is not None
    )
    body = f'<polyline points="{points}" class="line"/>{dots}' if points else ""
    summary = f"highest {top:.3g} {unit}" if known else "no data"
    return Chart(_frame(f"{label}: {summary}", body, f"{top:.3g} {unit}", len(values)), summary)


def sparkline(counts: Sequence[int], *, label: str) -> Chart:
    """A queue's attempts per minute, as small bars (no axes: the total says the scale)."""
    top = max(counts, default=0) or 1
    step = SPARK_WIDTH / max(len(counts), 1)
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{SPARK_HEIGHT - n * SPARK_HEIGHT / top:.1f}"'
        f' width="{max(step - 0.5, 0.5):.1f}" height="{n * SPARK_HEIGHT / top:.1f}"/>'
        for i, n in enumerate(counts)
        if n
    )
    summary = f"{sum(counts)} in the last {len(counts)} min, at most {max(counts, default=0)}/min"
    svg = Markup(
        f'<svg class="spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img"'
        f' aria-label="{escape(label)}: {summary}" xmlns="http://www.w3.org/2000/svg">{bars}</svg>'
    )
    return Chart(svg, summary)
