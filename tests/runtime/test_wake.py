"""Enqueues leave a wake token for idle consumers (runtime/wake.py), on the session's real Redis.
(That an idle worker then runs a job at once is measured by ops/bench/api.py, end to end.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from runtime import broker
from tests.support import jobs

WAKE = "dramatiq:default.wake"
DELAYED_WAKE = "dramatiq:default.DQ.wake"


@pytest.fixture()
def client(clean_redis: redis.Redis) -> Iterator[redis.Redis]:
    clean_redis.delete(WAKE, DELAYED_WAKE)
    yield clean_redis
    broker().flush("default.DQ")
    clean_redis.delete(WAKE, DELAYED_WAKE)


def test_an_enqueue_leaves_one_token_however_many_messages(client: redis.Redis) -> None:
    # When jobs are sent to a queue no worker consumes
    for _ in range(3):
        jobs.slow.send(jobs.Slow(key=uuid.uuid4().hex, seconds=1))
    # Then the queue's wake list holds one token, not one per message
    assert client.lrange(WAKE, 0, -1) == [b"1"]
    assert client.llen("dramatiq:default") == 3


def test_a_delayed_message_wakes_the_delay_queue_consumers(client: redis.Redis) -> None:
    jobs.slow.send(jobs.Slow(key=uuid.uuid4().hex, seconds=1), delay_ms=60_000)
    assert client.llen(DELAYED_WAKE) == 1
    assert client.llen(WAKE) == 0
