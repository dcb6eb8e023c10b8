"""RQ, a peer of the side-by-side benchmark (ops/bench/peers.py): a bare job function, enqueued
on RQ's `default` queue, doing what the counted no-op of ops/bench/plain_jobs.py does. It must
never import `actors` or `runtime`.

    rq worker-pool --num-workers 8 default
"""

from __future__ import annotations

import os

import redis
from rq import Queue

from ops.bench import counters

client = redis.Redis.from_url(os.environ["REDIS_URL"])
QUEUE = "default"
#: Jobs per `enqueue_many` call while filling: RQ's own bulk enqueue (one pipeline each).
FILL_BATCH = 1000


def counted_noop(n: int = 0) -> dict[str, int]:
    counters.complete(client)
    return {"n": n}


def fill(count: int, *, start: int = 0) -> None:
    queue = Queue(QUEUE, connection=client)
    for first in range(start, start + count, FILL_BATCH):
        last = min(first + FILL_BATCH, start + count)
        queue.enqueue_many(
            [Queue.prepare_data(counted_noop, args=(n,)) for n in range(first, last)]
        )
