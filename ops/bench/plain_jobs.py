"""Plain Dramatiq, the baseline of the side-by-side benchmarks: a stock `RedisBroker` with
Dramatiq's default middleware and plain `@dramatiq.actor`s doing exactly what the actors of
ops/bench/jobs.py do. It must never import `actors` (that would bring our broker and middleware).

    dramatiq ops.bench.plain_jobs --queues default

Dramatiq's own defaults apply (60 s heartbeat timeout, maintenance on 0.1 % of broker calls);
only the crash benchmark's smoke test shortens them, through the two BENCH_PLAIN_* variables.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from ops.bench import counters


def _overrides() -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "BENCH_PLAIN_HEARTBEAT_TIMEOUT_MS" in os.environ:
        found["heartbeat_timeout"] = int(os.environ["BENCH_PLAIN_HEARTBEAT_TIMEOUT_MS"])
    if "BENCH_PLAIN_MAINTENANCE_CHANCE" in os.environ:
        found["maintenance_chance"] = int(os.environ["BENCH_PLAIN_MAINTENANCE_CHANCE"])
    return found


broker = RedisBroker(url=os.environ["REDIS_URL"], **_overrides())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default")
def counted_noop(n: int = 0) -> None:
    # Returns nothing, as a plain user's no-op would: a value returned without Dramatiq's Results
    # middleware costs a logged warning per job (18 us and 1.7 kB of log), a handicap.
    counters.complete(broker.client)


@dramatiq.actor(queue_name="ml_light")
def slow(key: str, seconds: float) -> None:
    counters.run_slow(broker.client, key, seconds)


def fill(count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        counted_noop.send(n)


def send_slow(key: str, seconds: float) -> str:
    return str(slow.send(key, seconds).message_id)
