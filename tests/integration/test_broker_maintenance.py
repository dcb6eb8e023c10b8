"""Broker maintenance from the clock: a SIGKILLed worker's message is back within 2 minutes.

In its own module so that no other worker (with the tests' short heartbeat timeout and
Dramatiq's random maintenance) is alive to recover the message first.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from runtime import State, records
from scheduler.state import ScheduleState
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.scheduler import clock_process
from tests.support.workers import WorkerProcess


@pytest.mark.slow
@pytest.mark.soak  # a minute of waiting for production timeouts
def test_sigkilled_worker_recovers_within_two_minutes_with_production_defaults(
    scheduler_state: redis.Redis,
    demo_database: str,
    tmp_path: Path,
    capsys: Any,
) -> None:
    # Production defaults: 30 s worker heartbeat timeout and the clock's broker maintenance
    # every minute. Dramatiq's random maintenance is switched off, so the recovery measured is
    # the deterministic one alone.
    env = {"WORKER_HEARTBEAT_TIMEOUT_MS": "30000", "BROKER_MAINTENANCE_CHANCE": "0"}
    key = uuid.uuid4().hex[:12]
    victim = WorkerProcess(scheduler_state, env=env, threads=1)
    message = jobs.slow.send(jobs.Slow(key=key, seconds=5))
    wait_for(lambda: scheduler_state.get(f"{jobs.PREFIX}count:{key}"), what="job start")
    # When the worker running the job is SIGKILLed mid-job
    victim.kill()
    killed_at = time.time()
    survivor = WorkerProcess(scheduler_state, env=env)
    clock = clock_process(tmp_path / "clock.log", env=env)
    try:
        # Then the job is re-delivered and completes
        wait_for(
            lambda: (r := records().get(message.message_id)) and r.state is State.SUCCESS,
            timeout=150,
            interval=0.5,
            what="redelivery after SIGKILL",
        )
        done_s = time.time() - killed_at
    finally:
        clock.terminate()
        clock.wait(timeout=20)
        survivor.stop()
    attempts = scheduler_state.lrange(f"{jobs.PREFIX}attempts:{key}", 0, -1)
    redelivered_s = float(attempts[-1]) - killed_at
    assert scheduler_state.get(f"{jobs.PREFIX}count:{key}") == b"2"  # ran again, once
    recovered = [
        record.result
        for record in records().get_many(
            run["task_id"] for run in ScheduleState(scheduler_state).history()
        )
        if record.task_name == "broker_maintenance" and record.result
    ]
    assert any(result["recovered"] >= 1 for result in recovered), recovered
    with capsys.disabled():
        print(
            f"\n[recovery] SIGKILL -> running again in {redelivered_s:.1f} s, "
            f"SUCCESS in {done_s:.1f} s (production defaults)"
        )
    assert redelivered_s < 120
