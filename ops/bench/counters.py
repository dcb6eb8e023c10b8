"""What the benchmark actors of both sides (ours in ops/bench/jobs.py, plain Dramatiq in
ops/bench/plain_jobs.py) record in Redis, so each side does the same work and the benchmark
reads completions and attempts from outside the workers the same way for both."""

from __future__ import annotations

import time
from typing import Any

#: INCR'd once by every completed no-op.
COMPLETED = "bench:completed"
#: INCR'd by a callback when it runs: the end of a chord, of a Dramatiq group or a Celery chord.
CALLBACKS = "bench:wf:callbacks"
PREFIX = "bench:slow:"


def complete(client: Any) -> None:
    client.incr(COMPLETED)


def completed(client: Any) -> int:
    return int(client.get(COMPLETED) or 0)


#: How long a slow job's first attempt holds at most: the crash benchmark kills its worker
#: meanwhile, however long the survivor takes to start on a loaded machine.
FIRST_ATTEMPT_HOLD_S = 600.0


def attempt(client: Any, key: str) -> int:
    """A slow job starts: when (unix time) goes to a list, read by the crash benchmark.
    Answers which attempt this is (1 for the first)."""
    return int(client.rpush(f"{PREFIX}attempts:{key}", time.time()))


def run_slow(client: Any, key: str, seconds: float) -> None:
    """The slow job's body, the same on both sides: the first attempt holds until its worker is
    killed, a later one (the recovered job) takes `seconds` and finishes."""
    first = attempt(client, key) == 1
    time.sleep(FIRST_ATTEMPT_HOLD_S if first else seconds)
    finish(client, key)


def attempts(client: Any, key: str) -> list[float]:
    return [float(t) for t in client.lrange(f"{PREFIX}attempts:{key}", 0, -1)]


def finish(client: Any, key: str) -> None:
    client.incr(f"{PREFIX}done:{key}")


def finished(client: Any, key: str) -> int:
    return int(client.get(f"{PREFIX}done:{key}") or 0)
