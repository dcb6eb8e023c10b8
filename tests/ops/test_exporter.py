"""The exporter's scheduler figures, read from a real Redis."""

from __future__ import annotations

import math
import time

import redis
from prometheus_client import CollectorRegistry, generate_latest

from actors import broker
from actors.control import Control
from actors.jobs import records
from ops.exporter import BrokerCollector
from scheduler.state import ScheduleState


def _scrape() -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(BrokerCollector(Control(broker, records())))
    values: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_no_clock_ever_means_infinite_heartbeat_age(clean_redis: redis.Redis) -> None:
    values = _scrape()
    assert math.isinf(values["gaveurs_scheduler_heartbeat_age_seconds"])
    assert values["gaveurs_schedulers_alive"] == 0


def test_heartbeats_and_skips_are_exported(clean_redis: redis.Redis) -> None:
    state = ScheduleState(clean_redis)
    now = time.time()
    state.beat("clock-a", now - 10)
    state.beat("clock-b", now - 120)  # silent for two minutes: not alive
    state.mark_skipped("health-check-periodic", "waited too long")
    state.mark_skipped("health-check-periodic", "waited too long")
    values = _scrape()
    assert 9 <= values["gaveurs_scheduler_heartbeat_age_seconds"] <= 12
    assert values["gaveurs_schedulers_alive"] == 1
    assert values['gaveurs_schedule_skips_total{entry="health-check-periodic"}'] == 2
