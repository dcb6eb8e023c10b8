"""Celery 5's chord for ops/bench/workflows.py: members and callback as bare `@app.task`s, with
the Redis result backend a chord needs (on the same Redis), every other setting the default.
It must never import `actors` or `runtime`.

    celery -A ops.bench.celery_chords worker --pool threads --concurrency 8
"""

from __future__ import annotations

import os

import redis
from celery import Celery

from ops.bench import counters

app = Celery("bench_chords", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
client = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.task
def chord_member(n: int) -> int:
    """What ops/bench/workflow_jobs.py's wf_step does."""
    counters.complete(client)
    return n


@app.task
def chord_callback(results: list[int]) -> dict[str, int]:
    """What wf_callback does when it receives every member's result."""
    client.incr(counters.CALLBACKS)
    return {"count": len(results), "sum": sum(results)}
