"""Redis through Sentinel (ops/local_sentinel.py: a master, a replica, three Sentinels): a real
demoted master's READONLY becomes a connection loss for every write path, and the start-up faults
(Sentinels unreachable, a wrong master name, no master) say what is wrong."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from domain.platform.settings import Settings
from ops.local_redis import free_port
from ops.local_sentinel import LocalSentinels
from runtime import (
    REDIS_ERRORS,
    CircuitBreaker,
    JobRecords,
    SentinelMisconfigured,
    SentinelUnreachable,
    State,
    async_redis_client,
    check_sentinels,
    live_workers,
    redis_client,
    sentinel_master,
    setup,
    until_redis_answers,
)
from scheduler.state import ScheduleState
from tests.support.api import ApiProcess
from tests.support.polling import wait_for
from tests.support.workers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentinels() -> Iterator[LocalSentinels]:
    cluster = LocalSentinels()
    yield cluster
    cluster.stop()


def settings_for(cluster: LocalSentinels, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "redis_url": "redis://127.0.0.1:1/0",  # its host is not used with Sentinels
        "redis_sentinels": cluster.spec,
        "redis_sentinel_master": cluster.name,
    }
    return Settings(**{**options, **overrides})


def write_paths(client: redis.Redis) -> dict[str, Callable[[], object]]:
    """One write of each kind the runtime makes, on `client`'s connections."""
    records = JobRecords(client, retention_s=3600)
    breaker = CircuitBreaker(client, "sentinel-test", threshold=100, open_s=1)
    state = ScheduleState(client)
    ticks = iter(range(10**6))

    def failed_call() -> None:
        with pytest.raises(ValueError):
            breaker.call(_fails)

    return {
        "record transition": lambda: records.transition("sentinel-job", State.STARTED, epoch=0),
        "progress": lambda: records.progress("sentinel-job", 50, "half"),
        "breaker failure": failed_call,
        "schedule claim": lambda: state.claim("sentinel-entry", 60_000 * (1 + next(ticks))),
        "uniqueness key": lambda: client.set("gaveurs:unique:sentinel", "x", px=60_000, nx=False),
        "enqueue (queue push)": lambda: client.rpush("dramatiq:sentinel-test", "m"),
        "ack (set remove)": lambda: client.srem("dramatiq:__acks__.sentinel.default", "m"),
    }


def _fails() -> None:
    raise ValueError("the provider is down")


def test_a_demoted_masters_readonly_is_a_connection_loss_on_every_write_path(
    sentinels: LocalSentinels,
) -> None:
    # Given clients (ours, and a held raw connection) talking to the master
    client = redis_client(settings_for(sentinels))
    paths = write_paths(client)
    for write in paths.values():
        write()
    held = client.connection_pool.get_connection()
    old = sentinels.master()
    raw = redis.Redis(port=old.port)
    raw.ping()
    # When the Sentinels promote the replica and make the old master a replica, alive
    sentinels.demote_master()
    sentinels.wait_failover(old)
    sentinels.wait_rejoined(old)
    # Then the old master really answers READONLY to a write on a connection it already had
    with pytest.raises(redis.ReadOnlyError):
        raw.set("k", "v")
    # and the Sentinels closed the connections it had (CLIENT KILL in their reconfiguration)
    with pytest.raises(redis.ConnectionError):
        held.send_command("SET", "k", "v")
        held.read_response()
    client.connection_pool.release(held)
    # and a connection that learnt the old address just before the switch gets READONLY, which
    # redis-py's Sentinel-managed connection turns into a ConnectionError after dropping itself
    late = client.connection_pool.make_connection()
    late.connect_to(("127.0.0.1", old.port))
    late.send_command("SET", "k", "v")
    with pytest.raises(redis.ConnectionError, match="previous master is now a slave"):
        late.read_response()
    # and every write path, riding out connection losses, lands on the new master
    for name, write in paths.items():
        until_redis_answers(write, patience_s=10, what=name)
    new = sentinels.master()
    assert new.port != old.port
    assert new.client.exists("gaveurs:unique:sentinel", "dramatiq:sentinel-test") == 2
    raw.close()


def test_readonly_on_thread_connections_is_a_connection_loss(sentinels: LocalSentinels) -> None:
    # The job-record scripts run on each thread's own connection (runtime/direct.py), not
    # through the pool's retries: a demotion surfaces there as a REDIS_ERRORS the worker rides out
    client = redis_client(settings_for(sentinels))
    records = JobRecords(client, retention_s=3600)
    records.transition("thread-job", State.STARTED, epoch=0)
    old = sentinels.master()
    sentinels.demote_master()
    sentinels.wait_failover(old)
    sentinels.wait_rejoined(old)
    errors: list[BaseException] = []

    def transition() -> object:
        try:
            return records.transition("thread-job", State.SUCCESS, epoch=0)
        except Exception as error:
            errors.append(error)
            raise

    until_redis_answers(transition, patience_s=10, what="record SUCCESS")
    assert all(isinstance(error, REDIS_ERRORS) for error in errors), errors


def test_the_asyncio_client_of_live_results_writes_to_the_sentinels_master(
    sentinels: LocalSentinels,
) -> None:
    async def round_trip() -> Any:
        client = async_redis_client(settings_for(sentinels))
        try:
            await client.publish("gaveurs:jobs:events:probe", "x")
            await client.set("gaveurs:async-probe", "v")
            return await client.get("gaveurs:async-probe")
        finally:
            await client.aclose()

    assert asyncio.run(round_trip()) == b"v"
    assert sentinels.master().client.get("gaveurs:async-probe") == b"v"


def test_a_wrong_master_name_stops_start_up_with_a_message_that_says_so(
    sentinels: LocalSentinels,
) -> None:
    settings = settings_for(sentinels, redis_sentinel_master="gaveurs-typo")
    with pytest.raises(SentinelMisconfigured) as error:
        setup(settings)
    message = str(error.value)
    assert "REDIS_SENTINEL_MASTER='gaveurs-typo'" in message
    assert f"monitors {sentinels.name}" in message


def test_unreachable_sentinels_are_named_and_start_up_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = [free_port(), free_port()]
    settings = Settings(redis_sentinels=",".join(f"127.0.0.1:{p}" for p in ports))
    with pytest.raises(SentinelUnreachable) as error:
        sentinel_master(settings)
    assert all(f"127.0.0.1:{port} (ConnectionError" in str(error.value) for port in ports)
    # setup logs the same line once and goes on: the clients keep retrying
    with caplog.at_level(logging.WARNING, logger="gaveurs.redis"):
        check_sentinels(settings)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gaveurs.redis"]
    assert "no Redis Sentinel answers; tried 127.0.0.1:" in line and "keep retrying" in line


def test_sentinels_without_a_master_the_api_answers_503_and_workers_wait(
    tmp_path: Path, demo_database: str
) -> None:
    cluster = LocalSentinels()
    try:
        env = {
            "REDIS_SENTINELS": cluster.spec,
            "REDIS_SENTINEL_MASTER": cluster.name,
            "DATABASE_URL": demo_database,
            "DEFERRED_MAX_JOBS": "0",
        }
        api = ApiProcess(env, log=tmp_path / "api.log")
        worker: subprocess.Popen[bytes] | None = None
        try:
            body = {"to_email": "eleveur@example.org", "subject": "s", "body_html": "<p>b</p>"}
            assert api.post("/api/jobs/send_email", json=body).status_code == 202
            # When every Redis server is down, the Sentinels name no usable master
            for server in cluster.servers:
                server.kill()
            refused = _wait_status(api, body, 503)
            assert refused.headers["Retry-After"] and "Redis" in refused.json()["detail"]
            # and a worker started then waits: alive, one line per retry, no traceback
            log = tmp_path / "worker.log"
            worker = subprocess.Popen(
                [sys.executable, "-m", "dramatiq", "tests.support.jobs:setup", "--threads", "1"],
                cwd=ROOT,
                env={**os.environ, **env, "dramatiq_prom_port": str(free_port())},
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            wait_for(lambda: "No master found" in log.read_text(), timeout=60, what="a retry")
            time.sleep(4)  # a retry more
            assert worker.poll() is None and "Traceback" not in log.read_text()
            # When the servers come back, the API accepts jobs again and the worker beats
            for server in cluster.servers:
                server.start()
            _wait_status(api, body, 202, timeout=60)
            wait_for(lambda: live_workers(cluster.client()), timeout=60, what="the worker")
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            api.stop()
    finally:
        cluster.stop()


def _wait_status(api: ApiProcess, body: dict[str, str], status: int, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = api.post("/api/jobs/send_email", json=body)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        time.sleep(0.5)
