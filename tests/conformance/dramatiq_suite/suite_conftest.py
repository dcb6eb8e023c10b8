"""Fixtures for Dramatiq's own tests, building OUR broker where they build a stock RedisBroker.

Copied as conftest.py next to the tests unpacked from Dramatiq's source distribution (its sdist
ships neither its conftest nor tests/common.py). `redis_broker` is the broker
`runtime.build_broker` makes for the platform (RobustRedisBroker with every middleware of ours),
on a real redis-server started for the run; `redis_worker` is Dramatiq's Worker on it, as
upstream. Dramatiq's tests declare plain `@dramatiq.actor`s and read the broker's internals
(scripts, heartbeats, ack sets), so any failure is a difference between our broker and Dramatiq's.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.rate_limits import backends as rl_backends
from dramatiq.results import backends as res_backends

import runtime
from domain.platform.settings import Settings
from ops.local_redis import RedisServer, free_port

logging.basicConfig(level=logging.WARNING, format="[%(threadName)s] [%(name)s] %(message)s")
# Their dead-letter test fails 16,000 jobs on purpose: a formatted traceback each is most of
# its time. A failing conformance test still shows the broker's and the worker's own logs.
logging.getLogger("dramatiq.worker.WorkerThread").setLevel(logging.CRITICAL)
logging.getLogger("dramatiq.middleware.retries.PolicyRetries").setLevel(logging.ERROR)

#: Tests skipped by name, each for a deliberate difference the README lists (section
#: "Dramatiq's own broker tests"). Filled from the environment by the runner.
DELIBERATE = dict(
    line.split("=", 1)
    for line in os.environ.get("GAVEURS_CONFORMANCE_SKIPS", "").splitlines()
    if "=" in line
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = DELIBERATE.get(item.name) or DELIBERATE.get(item.originalname)  # type: ignore[attr-defined]
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"deliberate difference: {reason}"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(redis_server: RedisServer) -> Iterator[Settings]:
    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-conformance-"))
    os.environ["dramatiq_prom_port"] = str(free_port())
    yield Settings(
        environment="test",
        redis_url=redis_server.url,
        database_url=f"sqlite:///{tmp}/gaveurs.db",
        export_dir=tmp / "exports",
        backup_dir=tmp / "backups",
        # Dramatiq's default, which its heartbeat and maintenance tests are written against.
        worker_heartbeat_timeout_ms=60_000,
        # Dramatiq's defaults for the policy of actors that declare none.
        default_min_backoff_ms=15_000,
        default_max_backoff_ms=86_400_000,
        default_max_retries=20,
        journal_enabled=False,
    )
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def redis_broker(settings: Settings, redis_server: RedisServer) -> Iterator[Any]:
    from domain.platform import db

    redis_server.client.flushall()
    broker = runtime.build_broker(settings, engine=db.make_engine(settings.database_url))
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    yield broker
    redis_server.client.flushall()
    broker.close()


@pytest.fixture()
def redis_worker(redis_broker: Any) -> Iterator[Worker]:
    worker = Worker(redis_broker, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture()
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture()
def stub_worker(stub_broker: StubBroker) -> Iterator[Worker]:
    worker = Worker(stub_broker, worker_timeout=100, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture()
def our_client(settings: Settings, redis_server: RedisServer) -> redis.Redis:
    """The client our broker and its backends share (runtime.redis_client), on an empty Redis."""
    redis_server.client.flushall()
    return runtime.redis_client(settings)


# Dramatiq parametrises its rate-limiter and result tests by backend; ours are its Redis
# backends on the client above (runtime/build.py), so only the "redis" parameter applies.
@pytest.fixture(params=["redis"])
def rate_limiter_backend(our_client: redis.Redis) -> rl_backends.RedisBackend:
    return rl_backends.RedisBackend(client=our_client)


@pytest.fixture(params=["redis"])
def result_backend(our_client: redis.Redis) -> res_backends.RedisBackend:
    return res_backends.RedisBackend(client=our_client)


@pytest.fixture()
def redis_result_backend(our_client: redis.Redis) -> res_backends.RedisBackend:
    return res_backends.RedisBackend(client=our_client)
