"""Celery 5, a peer of the side-by-side benchmarks (ops/bench/peers.py, workflows.py): the code a
Celery user would write, a bare `@app.task` on a Redis broker with Celery's defaults, doing what
the counted no-op of ops/bench/plain_jobs.py does. It must never import `actors` or `runtime`.

    celery -A ops.bench.celery_jobs worker --pool threads --concurrency 8

Results go to Redis only where a chord needs them (the `chord_*` tasks: a chord needs a result
backend); the counted no-op ignores its result, as Celery does by default without a backend.
"""

from __future__ import annotations

import os
from typing import Any

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
    return n


@app.task(ignore_result=False)
def chord_callback(results: list[Any], key: str) -> int:
    client.set(key, len(results))
    return len(results)


def fill(count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        counted_noop.delay(n)
