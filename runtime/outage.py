"""Riding out a Redis outage inside a worker: keep trying a write until Redis answers again.

Dramatiq retries acks forever while the connection is down; a job record or a retry that is
lost in the same outage would leave a job STARTED forever or drop it. Producers (the API) must
not wait: they answer 503 at once and never use this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0

logger = logging.getLogger("gaveurs.outage")


def until_redis_answers(fn: Callable[[], T], *, patience_s: float, what: str) -> T:
    """Call `fn` until it stops raising Redis connection errors, for at most `patience_s`."""
    deadline = time.monotonic() + patience_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return fn()
        except REDIS_ERRORS as error:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s: Redis unreachable (%s); retrying in %.1f s", what, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
