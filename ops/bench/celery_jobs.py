"""Celery 5, the peer of ops/bench/peers.py: the code a Celery user writes first, a bare
`@app.task` on a Redis broker, every setting Celery's default (no result backend, so no result
is stored, as Celery does without one), doing what the counted no-op of ops/bench/plain_jobs.py
does. It must never import `actors` or `runtime`. The chord of ops/bench/workflows.py needs a
result backend: its tasks are in ops/bench/celery_chords.py.

    celery -A ops.bench.celery_jobs worker --pool threads --concurrency 8
"""

from __future__ import annotations

import os

import redis
from celery import Celery

from ops.bench import counters

app = Celery("bench", broker=os.environ["REDIS_URL"])
client = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.task
def counted_noop(n: int = 0) -> dict[str, int]:
    counters.complete(client)
    return {"n": n}


def fill(count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        counted_noop.delay(n)
