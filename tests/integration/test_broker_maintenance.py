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

from actors.jobs import records
from actors.records import State
from scheduler.state import ScheduleState
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.scheduler import clock_process
from tests.support.workers import WorkerProcess


@pytest.mark.slow
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
    message = jobs.slow.send(jobs.Slow(key=key, seconds=3))
    wait_for(lambda: scheduler_state.get(f"{jobs.PREFIX}count:{key}"), what="job start")
    survivor = WorkerProcess(scheduler_state, env=env)
    clock = clock_process(tmp_path / "clock.log", env=env)
    try:
        # When the worker running the job is SIGKILLed
        victim.kill()
        killed_at = time.monotonic()
        # Then the job is re-delivered and completes within two minutes
        wait_for(
            lambda: (r := records().get(message.message_id)) and r.state is State.SUCCESS,
            timeout=120,
            interval=0.5,
            what="redelivery after SIGKILL",
        )
        recovery_s = time.monotonic() - killed_at
    finally:
        clock.terminate()
        clock.wait(timeout=20)
        survivor.stop()
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
        print(f"\n[recovery] SIGKILL -> SUCCESS in {recovery_s:.1f} s (production defaults)")
    assert recovery_s < 120
