"""Celery 5, a peer of the side-by-side benchmarks (ops/bench/peers.py, workflows.py): the code a
Celery user would write, a bare `@app.task` on a Redis broker with Celery's defaults, doing what
the counted no-op of ops/bench/plain_jobs.py does. It must never import `actors` or `runtime`.

    celery -A ops.bench.celery_jobs worker --pool threads --concurrency 8

Results go to Redis only where a chord needs them (the `chord_*` tasks: a chord needs a result
backend, here the same Redis); the counted no-op ignores its result, as Celery does without a
backend.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

from ops.bench import counters

app = Celery("bench", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.task_ignore_result = True
client = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.task
def counted_noop(n: int = 0) -> dict[str, int]:
    counters.complete(client)
    return {"n": n}


@app.task(ignore_result=False)
def chord_member(n: int) -> int:
    """What ops/bench/workflow_jobs.py's wf_step does."""
    counters.complete(client)
    return n


@app.task(ignore_result=False)
def chord_callback(results: list[int]) -> dict[str, int]:
    """What wf_callback does when it receives every member's result."""
    client.incr(counters.CALLBACKS)
    return {"count": len(results), "sum": sum(results)}


def fill(count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        counted_noop.delay(n)
