"""What every benchmark reports the same way: latency summaries and targets with a verdict."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The calibration's fixed work: a pure-Python loop of this many turns (~5 ms here).
CALIBRATION_TURNS = 50_000


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


def calibration_us(*, repeat: int = 5) -> int:
    """Microseconds of CPU a fixed pure-Python loop takes now (the median of `repeat`): the
    machine's speed at the moment. A side whose rate swings while this holds still was not
    slowed by the machine (ours' swing of 310 <-> 500 µs a job was its threads spread over two
    cores: runtime/middleware/cpu_pin.py)."""
    spent = []
    for _ in range(repeat):
        began = time.process_time()
        total = 0
        for turn in range(CALIBRATION_TURNS):
            total += turn * turn % 7
        spent.append(time.process_time() - began)
    return round(statistics.median(spent) * 1e6)


def cpu_jiffies() -> tuple[int, int]:
    """(all, steal): the machine's CPU time so far in jiffies, and the share of it the
    hypervisor gave to other guests (/proc/stat's eighth column)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time between two `cpu_jiffies` that was stolen."""
    spent = after[0] - before[0]
    return round(100 * (after[1] - before[1]) / spent, 2) if spent else 0.0
