"""Jobs used by the integration tests, declared exactly like production jobs.

They record what happened in Redis under `gaveurs:test:*` keys so a test can check how many
times and when each ran, from outside the worker process.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from actors import setup  # noqa: F401  (Dramatiq's CLI: tests.support.jobs:setup)
from domain.errors import InvalidInput, TransientError
from runtime import (
    Payload,
    RetryPolicy,
    SoftTimeLimitExceeded,
    broker,
    job,
    progress,
    soft_limit_reached,
)

PREFIX = "gaveurs:test:"


class Keyed(Payload):
    key: str = Field(min_length=1, max_length=100)


class Flaky(Keyed):
    failures: int = Field(ge=0, le=10)


class Slow(Keyed):
    seconds: float = Field(gt=0, le=600)


def _record_attempt(key: str) -> int:
    pipe = broker().client.pipeline(transaction=False)
    pipe.rpush(f"{PREFIX}attempts:{key}", time.time())
    pipe.incr(f"{PREFIX}count:{key}")
    return int(pipe.execute()[1])


@job(
    queue="default",
    payload=Flaky,
    retry=RetryPolicy(max_retries=5, min_backoff_ms=500, max_backoff_ms=10_000),
)
def flaky(payload: Flaky) -> dict[str, Any]:
    """Fails with a transient error `failures` times, then succeeds."""
    attempt = _record_attempt(payload.key)
    if attempt <= payload.failures:
        raise TransientError(f"simulated outage {attempt}/{payload.failures}")
    return {"status": "success", "attempts": attempt}


@job(queue="default", payload=Keyed, retry=RetryPolicy(max_retries=5, min_backoff_ms=300))
def broken(payload: Keyed) -> dict[str, Any]:
    """Fails permanently until the test sets its `fixed` flag, then succeeds (for re-drives)."""
    _record_attempt(payload.key)
    if not broker().client.exists(f"{PREFIX}fixed:{payload.key}"):
        raise InvalidInput(f"lot {payload.key} has no feeding records")
    return {"status": "success", "key": payload.key}


def _run_slowly(payload: Slow) -> dict[str, Any]:
    _record_attempt(payload.key)
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < payload.seconds:
        time.sleep(0.05)
        steps += 1
        progress(100 * (time.monotonic() - started) / payload.seconds, f"step {steps}")
    broker().client.incr(f"{PREFIX}done:{payload.key}")
    return {"status": "success", "steps": steps}


@job(queue="default", payload=Slow, retry=RetryPolicy(max_retries=2, min_backoff_ms=300))
def slow(payload: Slow) -> dict[str, Any]:
    """Sleeps in small steps, reporting progress."""
    return _run_slowly(payload)


@job(queue="default", payload=Slow, unique="{key}")
def unique_slow(payload: Slow) -> dict[str, Any]:
    """Like `slow`, but only one per key may be queued or running."""
    return _run_slowly(payload)


#: Short, so a test waits out a window in well under a second.
DEBOUNCE_MS = 500


@job(queue="default", payload=Slow, debounce="{key}", debounce_ms=DEBOUNCE_MS)
def debounced_slow(payload: Slow) -> dict[str, Any]:
    """Like `slow`, but the requests for one key within the window run once."""
    return _run_slowly(payload)


@job(queue="default", payload=Slow, soft_time_limit_ms=500, time_limit_ms=5_000)
def anytime(payload: Slow) -> dict[str, Any]:
    """An 'anytime' search: improves a result until its soft limit, then returns the best so far."""
    best, rounds = 0, 0
    try:
        while rounds < payload.seconds * 100:
            time.sleep(0.01)
            rounds += 1
            best = rounds
    except SoftTimeLimitExceeded:
        return {"status": "partial", "best": best, "stopped": "soft time limit"}
    return {"status": "complete", "best": best, "reached": soft_limit_reached()}


@job(queue="default", payload=Slow, time_limit_ms=1_000, retry=RetryPolicy(max_retries=3))
def overrun(payload: Slow) -> dict[str, Any]:
    """Runs past its hard time limit: interrupted, and not retried (it would overrun again)."""
    return _run_slowly(payload)


class Leak(Keyed):
    mb: int = Field(ge=1, le=500)


#: What `leaky` keeps alive: a worker process only gets this memory back by being replaced.
_LEAKED: list[bytearray] = []


@job(queue="default", payload=Leak)
def leaky(payload: Leak) -> dict[str, Any]:
    """Keeps `mb` MB alive after it returns, as a growing ML worker does; records pid and RSS."""
    import os

    import psutil

    chunk = bytearray(payload.mb * 1024 * 1024)
    chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page, so it counts in RSS
    _LEAKED.append(chunk)
    rss_mb = psutil.Process().memory_info().rss / (1024 * 1024)
    _record_attempt(payload.key)
    broker().client.rpush(f"{PREFIX}leaky", f"{os.getpid()} {rss_mb:.0f}")
    return {"pid": os.getpid(), "rss_mb": round(rss_mb)}


class Tick(Keyed):
    pass


@job(queue="default", payload=Tick, priority_range=("low", "critical"))
def tick(payload: Tick) -> dict[str, Any]:
    """Records the order jobs ran in (`gaveurs:test:order`, the key of each), for priority tests."""
    broker().client.rpush(f"{PREFIX}order", payload.key)
    return {"key": payload.key}
