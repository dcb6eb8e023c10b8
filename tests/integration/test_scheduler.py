"""The scheduler with real processes: two clocks, late runs skipped, crashed workers recovered."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import redis

from runtime import Control, State, broker, records
from scheduler.state import ScheduleState
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.scheduler import clock_process
from tests.support.workers import WorkerProcess


def test_two_clock_processes_send_each_tick_once(
    scheduler_state: redis.Redis, demo_database: str, tmp_path: Path
) -> None:
    # Given two clock processes replaying a Monday morning from 06:52 at 60x speed; the replay
    # starts 10 s from now, and however slowly the processes start, the test waits for the
    # replayed clock to pass 07:05
    epoch = f"{time.time() + 10:.3f}"
    replay = ["--start", "2026-01-05T06:52:00", "--speed", "60", "--epoch", epoch]
    clocks = [clock_process(tmp_path / f"clock{i}.log", *replay) for i in range(2)]

    def past_0705() -> bool:
        ticks = [r["tick"] for r in ScheduleState(scheduler_state).history(limit=50)]
        return any(tick >= "2026-01-05T07:05" for tick in ticks)

    try:
        wait_for(past_0705, timeout=120, interval=0.5, what="the replay to pass 07:05")
    finally:
        for process in clocks:
            process.terminate()
        for process in clocks:
            process.wait(timeout=20)
    history = ScheduleState(scheduler_state).history()
    per_tick = Counter((run["entry"], run["tick"]) for run in history)
    # Then every (entry, tick) was sent exactly once, by one clock or the other
    assert per_tick and max(per_tick.values()) == 1, per_tick.most_common(3)
    # and no minute was lost: broker maintenance ran every minute up to 07:05,
    as_minutes = [
        int(t[14:16]) + 60 * int(t[11:13])
        for t in sorted(tick for entry, tick in per_tick if entry == "broker-maintenance")
    ]
    assert as_minutes == list(range(as_minutes[0], as_minutes[-1] + 1)), as_minutes
    minutes = sorted(tick for entry, tick in per_tick if entry == "broker-maintenance")
    assert len(minutes) >= 6 and minutes[-1] >= "2026-01-05T07:05"
    assert minutes[0] <= "2026-01-05T07:00"
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
        return broker().enqueue(aged).message_id

    late, fine = sent(1_000), sent(60_000)

    # Then the late one is revoked with its reason and counted; the other runs
    late_record = wait_for(
        lambda: (r := records().get(late)) and r.state is State.REVOKED and r, what="skip"
    )
    assert (late_record.failure_reason or "").startswith("late: started 5 s after")
    wait_for(lambda: (r := records().get(fine)) and r.state is State.SUCCESS, what="run")
    assert ScheduleState(scheduler_state).skips() == {"probe": 1}


def test_broker_maintenance_reports_nothing_to_recover_on_a_healthy_system(
    scheduler_state: redis.Redis, worker: WorkerProcess
) -> None:
    outcome = Control(broker(), records()).recover_dead_workers(("default",))
    assert outcome["recovered"] == 0
