from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ops.local_redis import RedisServer


def clear_scheduler_state(client: redis.Redis) -> None:
    keys = list(client.scan_iter("gaveurs:scheduler:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture()
def clean_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The test Redis with no scheduler state and an empty `default` queue, before and after."""
    from actors import broker

    client = redis_server.client
    clear_scheduler_state(client)
    broker.flush("default")
    yield client
    clear_scheduler_state(client)
    broker.flush("default")
