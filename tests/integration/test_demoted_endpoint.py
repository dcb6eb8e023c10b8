"""A managed Redis behind one endpoint (REDIS_URL, no Sentinel) fails over by demoting the node a
client still holds connections to: on real servers, its READONLY answers are a connection loss
for every write path (plain commands, pipelines, the job-record scripts, asyncio), so the
outage handling that rides out a restart rides out the failover too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from domain.platform.settings import Settings
from ops.local_redis import RedisServer
from runtime import JobRecords, State, async_redis_client, redis_client

pytestmark = pytest.mark.slow


@pytest.fixture()
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    first, second = RedisServer(), RedisServer()  # each starts in its constructor
    yield first, second
    first.stop()
    second.stop()


def test_a_demoted_nodes_readonly_drops_the_connection_on_every_write_path(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    node, other = pair
    settings = Settings(redis_url=node.url)
    client = redis_client(settings)
    records = JobRecords(client, retention_s=3600)
    records.transition("endpoint-job", State.PENDING, epoch=0, mode="create", fields={})
    client.set("k", "before")
    # When the node behind the endpoint becomes a replica (the provider's failover)
    node.client.replicaof("127.0.0.1", other.port)
    # Then each write on the connections the client holds is a connection loss, not an error
    writes = {
        "command": lambda: client.set("k", "after"),
        "pipeline": lambda: client.pipeline().set("k", "x").incr("n").execute(),
        "record script": lambda: records.transition("endpoint-job", State.STARTED, epoch=0),
    }
    for name, write in writes.items():
        with pytest.raises(redis.ConnectionError, match="READONLY"):
            write()
        assert name  # each path, by name in a failure
    # and once the endpoint leads to a primary again, the same client writes without a restart
    node.client.replicaof("no", "one")
    for write in writes.values():
        write()
    assert records.get("endpoint-job").state is State.STARTED  # type: ignore[union-attr]


def test_the_asyncio_client_drops_a_demoted_connection_too(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    node, other = pair

    async def scenario() -> None:
        client = async_redis_client(Settings(redis_url=node.url))
        await client.set("k", "before")
        node.client.replicaof("127.0.0.1", other.port)
        with pytest.raises(redis.ConnectionError, match="READONLY"):
            await client.set("k", "after")
        node.client.replicaof("no", "one")
        await client.set("k", "after")
        await client.aclose()

    asyncio.run(scenario())
