"""A worker killed with SIGKILL mid-job: its message comes back and finishes elsewhere."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from ops.local_redis import RedisServer
from runtime import records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def test_sigkilled_worker_message_is_redelivered_and_finishes(
    redis_server: RedisServer, demo_database: str, capsys: Any
) -> None:
    # Broker maintenance on every call, so recovery time is bounded by the heartbeat timeout
    # (3 s in tests) rather than by Dramatiq's 0.1 % chance per call.
    env = {"BROKER_MAINTENANCE_CHANCE": "1000000"}
    k = uuid.uuid4().hex[:12]
    first = WorkerProcess(redis_server.client, env=env)
    message = jobs.slow.send(jobs.Slow(key=k, seconds=2))
    wait_for(lambda: redis_server.client.get(f"{jobs.PREFIX}count:{k}"), what="job start")

    # When the worker is killed mid-job
    first.kill()
    killed_at = time.monotonic()
    second = WorkerProcess(redis_server.client, env=env)
    try:
        # Then the job is delivered again and finishes
        record = wait_for(
            lambda: (r := records().get(message.message_id)) and r.state.value == "SUCCESS" and r,
            timeout=120,
            what="redelivery",
        )
        recovered_in = time.monotonic() - killed_at
    finally:
        second.stop()
    assert record.attempts == 2
    assert redis_server.client.get(f"{jobs.PREFIX}done:{k}") == b"1"
    # And its timeline tells the lost delivery from the run that succeeded
    assert [(a["attempt"], a["outcome"]) for a in record.timeline] == [(1, "LOST"), (2, "SUCCESS")]
    with capsys.disabled():
        print(f"\n[crash recovery] SIGKILL -> SUCCESS on another worker in {recovered_in:.1f} s")
