"""The benchmarks' jobs, through the full middleware stack: a no-op, a counted no-op and a slow
job. The counted no-op and the slow job do exactly what their plain Dramatiq twins in
ops/bench/plain_jobs.py do, so a side-by-side run compares the platforms, not the actors."""

from __future__ import annotations

import time

from pydantic import Field

from actors import setup  # noqa: F401  (Dramatiq's CLI: ops.bench.jobs:setup)
from ops.bench import counters
from runtime import Payload, broker, job


class Noop(Payload):
    n: int = 0


class Waiting(Payload):
    ms: int = Field(ge=0, le=60_000)
    n: int = 0


class Slow(Payload):
    key: str = Field(min_length=1, max_length=100)
    seconds: float = Field(gt=0, le=600)


@job(queue="default", payload=Noop)
def noop(payload: Noop) -> dict[str, int]:
    return {"n": payload.n}


@job(queue="default", payload=Noop)
def counted_noop(payload: Noop) -> dict[str, int]:
    counters.complete(broker().client)
    return {"n": payload.n}


@job(queue="default", payload=Waiting)
def io_bound(payload: Waiting) -> None:
    """Waits `ms` as a call to a slow service would (no CPU), then counts itself."""
    time.sleep(payload.ms / 1000)
    counters.complete(broker().client)


# On ml_light, not default: a worker killed mid-job must not also hold a prefetched
# broker_maintenance message (default), which would keep the maintenance's uniqueness key.
@job(queue="ml_light", payload=Slow)
def slow(payload: Slow) -> None:
    counters.run_slow(broker().client, payload.key, payload.seconds)


def fill(count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        counted_noop.send(Noop(n=n))


def send_slow(key: str, seconds: float) -> str:
    return str(slow.send(Slow(key=key, seconds=seconds)).message_id)
