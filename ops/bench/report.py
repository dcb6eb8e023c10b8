"""What every benchmark reports the same way: latency summaries and targets with a verdict."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def latency_ms(values: Sequence[float], *, digits: int = 2) -> dict[str, float]:
    """p50/p90/p99/max of latencies given in milliseconds."""
    return {
        "p50": round(statistics.median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
    }


def target(
    value: float | None, *, at_least: float | None = None, at_most: float | None = None
) -> dict[str, Any]:
    """A figure against its target; a figure that could not be measured (None) fails."""
    assert (at_least is None) != (at_most is None), "one bound per target"
    if at_least is not None:
        wanted, passed = f">= {at_least:g}", value is not None and value >= at_least
    else:
        assert at_most is not None
        wanted, passed = f"<= {at_most:g}", value is not None and value <= at_most
    return {"value": value, "target": wanted, "pass": passed}


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def load() -> dict[str, Any]:
    """The machine's load when a figure was taken: the absolute figures mean little without it."""
    one, five, fifteen = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)],
    }
