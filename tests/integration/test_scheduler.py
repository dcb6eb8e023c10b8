"""The scheduler with real processes: two clocks, late runs skipped, crashed workers recovered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from actors import broker
from actors.control import Control
from actors.jobs import records
from actors.records import State
from ops.local_redis import RedisServer
from scheduler.state import ScheduleState
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.scheduler import clear_scheduler_state
from tests.support.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]


def _forget_scheduled_jobs(client: redis.Redis) -> None:
    """Scheduled jobs nobody ran: drop their records and uniqueness keys for the next tests."""
    for run in ScheduleState(client).history():
        records().delete(run["task_id"])
    unique = list(client.scan_iter("gaveurs:unique:*", count=1000))
    if unique:
        client.delete(*unique)
    clear_scheduler_state(client)
    broker.flush("default")


@pytest.fixture()
def scheduler_state(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client
    _forget_scheduled_jobs(client)
    yield client
    _forget_scheduled_jobs(client)


def _clock(log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_two_clock_processes_send_each_tick_once(
    scheduler_state: redis.Redis, demo_database: str, tmp_path: Path
) -> None:
    # Given two clock processes replaying 06:57 to ~07:09 on a Monday at 60x speed
    epoch = f"{time.time() + 1:.3f}"
    replay = ["--start", "2026-01-05T06:57:00", "--speed", "60", "--epoch", epoch]
    clocks = [_clock(tmp_path / f"clock{i}.log", *replay) for i in range(2)]
    try:
        time.sleep(13)
    finally:
        for process in clocks:
            process.terminate()
        for process in clocks:
            process.wait(timeout=20)
    history = ScheduleState(scheduler_state).history()
    per_tick = Counter((run["entry"], run["tick"]) for run in history)
    # Then every (entry, tick) was sent exactly once, by one clock or the other
    assert per_tick and max(per_tick.values()) == 1, per_tick.most_common(3)
    # and no minute was lost: broker maintenance ran for ~12 consecutive minutes,
    minutes = sorted(tick for entry, tick in per_tick if entry == "broker-maintenance")
    assert len(minutes) >= 10
    assert minutes[0].startswith("2026-01-05T06:5")
    # the Monday 07:00 KPIs ran once, hourly aggregates once at 07:00,
    assert per_tick[("weekly-kpis-calculation", "2026-01-05T07:00:00+01:00")] == 1
    assert per_tick[("refresh-continuous-aggregates-hourly", "2026-01-05T07:00:00+01:00")] == 1
    # and both clocks took part (exactly-once is not "only one clock works").
    assert len({run["scheduler"] for run in history}) == 2


def test_late_scheduled_run_is_skipped_counted_and_explained(
    scheduler_state: redis.Redis, worker: WorkerProcess
) -> None:
    # Given two scheduled runs that waited 5 s in the queue: one allowed 1 s, one 60 s
    def sent(late_after_ms: int) -> str:
        message = jobs.slow.message(
            jobs.Slow(key=uuid.uuid4().hex[:12], seconds=0.1),
            schedule_entry="probe",
            scheduled_at="2026-01-05T10:00:00+01:00",
            late_after_ms=late_after_ms,
        )
        aged = message.copy(message_timestamp=message.message_timestamp - 5_000)
        return broker.enqueue(aged).message_id

    late, fine = sent(1_000), sent(60_000)

    # Then the late one is revoked with its reason and counted; the other runs
    late_record = wait_for(
        lambda: (r := records().get(late)) and r.state is State.REVOKED and r, what="skip"
    )
    assert (late_record.failure_reason or "").startswith("late: started 5 s after")
    wait_for(lambda: (r := records().get(fine)) and r.state is State.SUCCESS, what="run")
    assert ScheduleState(scheduler_state).skips() == {"probe": 1}


@pytest.mark.slow
def test_sigkilled_worker_recovers_within_two_minutes_with_production_defaults(
    scheduler_state: redis.Redis, demo_database: str, tmp_path: Path, capsys: Any
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
    clock = _clock(tmp_path / "clock.log", env=env)
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


def test_broker_maintenance_reports_nothing_to_recover_on_a_healthy_system(
    scheduler_state: redis.Redis, worker: WorkerProcess
) -> None:
    outcome = Control(broker, records()).recover_dead_workers(("default",))
    assert outcome["recovered"] == 0
