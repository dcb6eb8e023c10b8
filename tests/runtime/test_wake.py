"""Enqueues leave a wake token for idle consumers (runtime/wake.py), on the session's real Redis.
(That an idle worker then runs a job at once is measured by ops/bench/api.py, end to end.)"""

from __future__ import annotations

import threading
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


class _DelayQueueThread(threading.Thread):
    """Stands for a worker's delay-queue consumer thread: Dramatiq's name their queue."""

    queue_name = "default.DQ"


def test_a_delayed_message_moved_to_its_queue_wakes_it_once_its_delayed_copy_is_acked(
    client: redis.Redis,
) -> None:
    # Given a delayed message fetched from the delay queue, its time come
    jobs.slow.send(jobs.Slow(key=uuid.uuid4().hex, seconds=1), delay_ms=1)
    consumer = broker().consume("default.DQ", prefetch=1, timeout=100)
    delayed = next(message for message in consumer if message is not None)
    client.delete(WAKE)
    seen: dict[str, list[bytes]] = {}

    def move() -> None:  # what Dramatiq's handle_delayed_messages does on that thread
        moved = delayed.copy(queue_name="default")
        del moved.options["eta"]
        broker().enqueue(moved)
        seen["after the enqueue"] = client.lrange(WAKE, 0, -1)
        consumer.ack(delayed)
        seen["after the ack"] = client.lrange(WAKE, 0, -1)

    thread = _DelayQueueThread(target=move)
    thread.start()
    thread.join(timeout=10)
    consumer.close()
    # Then the queue is woken only when the delay queue no longer holds the message
    assert seen == {"after the enqueue": [], "after the ack": [b"1"]}
    assert client.llen("dramatiq:default") == 1
    assert client.hlen("dramatiq:default.DQ.msgs") == 0  # the delayed copy is gone
    broker().flush("default")
