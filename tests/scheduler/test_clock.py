"""The clock against a real Redis with a fake time: once per tick, restarts, catch-up."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
import redis
from pydantic import BaseModel, ConfigDict

from runtime import REGISTRY, job
from scheduler import cron
from scheduler.clock import Clock
from scheduler.schedule import SCHEDULE, Entry, entries_by_name
from scheduler.state import ScheduleState

TZ = "Europe/Paris"


class Nothing(BaseModel):
    model_config = ConfigDict(extra="forbid")


@job(queue="default", payload=Nothing)
def scheduled_probe(payload: Nothing) -> dict[str, Any]:
    return {"ran": True}


HOURLY = Entry("probe-hourly", "scheduled_probe", "0 * * * *")
DAILY = Entry("probe-daily", "scheduled_probe", "0 3 * * *", catch_up=True)
MINUTELY = Entry("probe-minutely", "scheduled_probe", "* * * * *")


def at(text: str) -> pendulum.DateTime:
    moment = pendulum.parse(text, tz=TZ)
    assert isinstance(moment, pendulum.DateTime)
    return moment


def clock(client: redis.Redis, *entries: Entry, name: str = "a") -> Clock:
    return Clock(ScheduleState(client), entries, REGISTRY, tz=TZ, identity=name)


def test_two_clocks_send_each_tick_once(clean_redis: redis.Redis) -> None:
    # Given two clocks on the same schedule, both awake every few seconds of three minutes
    first, second = clock(clean_redis, MINUTELY, name="a"), clock(clean_redis, MINUTELY, name="b")
    sent = first.tick(at("2026-01-05T09:59:50")) + second.tick(at("2026-01-05T09:59:52"))
    for second_of_run in range(0, 180, 5):
        now = at("2026-01-05T10:00:00").add(seconds=second_of_run)
        sent += first.tick(now) + second.tick(now.add(seconds=1))
    # Then each of the three minutes was sent exactly once, by one clock or the other
    assert sorted(run.tick.isoformat() for run in sent) == [
        "2026-01-05T09:59:00+01:00",
        "2026-01-05T10:00:00+01:00",
        "2026-01-05T10:01:00+01:00",
        "2026-01-05T10:02:00+01:00",
    ]
    assert len(ScheduleState(clean_redis).history()) == 4
    assert {run["scheduler"] for run in ScheduleState(clean_redis).history()} <= {"a", "b"}


def test_restart_inside_the_due_minute_does_not_fire_again(clean_redis: redis.Redis) -> None:
    clock(clean_redis, HOURLY).tick(at("2026-01-05T09:59:00"))
    assert len(clock(clean_redis, HOURLY).tick(at("2026-01-05T10:00:03"))) == 1
    # A new process (new identity) starting at 10:00:40 sees the tick already sent.
    assert clock(clean_redis, HOURLY, name="restarted").tick(at("2026-01-05T10:00:40")) == []
    assert len(clock(clean_redis, HOURLY).tick(at("2026-01-05T11:00:01"))) == 1


def test_first_sight_of_an_entry_does_not_replay_the_past(clean_redis: redis.Redis) -> None:
    # A brand-new deployment at 10:30 must not run the 03:00 backup of today.
    assert clock(clean_redis, DAILY).tick(at("2026-01-05T10:30:00")) == []
    assert len(clock(clean_redis, DAILY).tick(at("2026-01-06T03:00:00"))) == 1


def test_missed_daily_runs_execute_once_after_downtime(clean_redis: redis.Redis) -> None:
    # Given a clock that ran on the 5th, then nothing until the 8th at 09:12
    clock(clean_redis, DAILY).tick(at("2026-01-05T02:59:00"))
    assert len(clock(clean_redis, DAILY).tick(at("2026-01-05T03:00:00"))) == 1
    # When a clock comes back, the three missed 03:00 runs (6th, 7th, 8th) fold into one
    caught = clock(clean_redis, DAILY).tick(at("2026-01-08T09:12:00"))
    assert [(run.kind, run.missed, run.tick.isoformat()) for run in caught] == [
        ("catch_up", 2, "2026-01-08T03:00:00+01:00")
    ]
    # and later passes do not repeat it; the next run is on time the following night.
    assert clock(clean_redis, DAILY).tick(at("2026-01-08T09:13:00")) == []
    (next_run,) = clock(clean_redis, DAILY).tick(at("2026-01-09T03:00:04"))
    assert next_run.kind == "on_time"


def test_hourly_entries_are_not_caught_up(clean_redis: redis.Redis) -> None:
    clock(clean_redis, HOURLY).tick(at("2026-01-05T04:59:00"))
    # Down from 05:00 to 09:30: nothing is replayed at 09:30, the 10:00 run happens.
    assert clock(clean_redis, HOURLY).tick(at("2026-01-05T09:30:00")) == []
    assert [run.kind for run in clock(clean_redis, HOURLY).tick(at("2026-01-05T10:00:00"))] == [
        "on_time"
    ]


def test_scheduled_message_carries_its_entry_and_late_policy(clean_redis: redis.Redis) -> None:
    from runtime import broker, records

    late = Entry("probe-late", "scheduled_probe", "0 * * * *", late_after_ms=50_000)
    clock(clean_redis, late).tick(at("2026-01-05T09:59:00"))
    (run,) = clock(clean_redis, late).tick(at("2026-01-05T10:00:00"))
    message = broker().consume("default", timeout=1000)
    received = next(iter(message))
    assert received.message_id == run.task_id
    assert received.options["schedule_entry"] == "probe-late"
    assert received.options["late_after_ms"] == 50_000
    assert received.options["scheduled_at"] == "2026-01-05T10:00:00+01:00"
    # The scheduler is a client too: its runs say who submitted them.
    assert received.options["client"] == "scheduler"
    assert records().get(run.task_id).client == "scheduler"  # type: ignore[union-attr]


def test_unregistered_actor_is_skipped_with_a_warning(
    clean_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ghost = Entry("ghost", "no_such_actor", "* * * * *")
    assert clock(clean_redis, ghost, HOURLY).entries == [HOURLY]
    assert "no_such_actor, which is not registered" in caplog.text


def test_cron_sunday_as_zero_and_bad_expressions() -> None:
    sunday = cron.parse("0 6 * * 0")
    assert cron.is_due(sunday, at("2026-01-11T06:00:00"))  # a Sunday
    assert not cron.is_due(sunday, at("2026-01-12T06:00:00"))
    with pytest.raises(ValueError, match="61"):
        Entry("bad", "scheduled_probe", "61 * * * *")
    with pytest.raises(ValueError, match="five fields"):
        Entry("bad", "scheduled_probe", "0 3 * *")


def test_cron_in_the_repeated_autumn_hour_fires_once() -> None:
    # 2026-10-25: 02:30 happens twice in Paris; a 02:30 entry runs once that night.
    spec = cron.parse("30 2 * * *")
    ticks = list(cron.ticks_between(spec, at("2026-10-24T12:00:00"), at("2026-10-26T12:00:00")))
    assert len(ticks) == 2
    assert [tick.day for tick in ticks] == [25, 26]


def test_cron_crosses_daylight_saving_time() -> None:
    # 2026-03-29 02:00 does not exist in Paris: the 03:00 backup still runs that day.
    daily = cron.parse("0 3 * * *")
    ticks = list(cron.ticks_between(daily, at("2026-03-28T12:00:00"), at("2026-03-30T12:00:00")))
    assert [tick.isoformat() for tick in ticks] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T03:00:00+02:00",
    ]


def test_the_table_is_seed_001_plus_broker_maintenance_and_seed_002_search() -> None:
    table = {entry.name: (entry.actor, entry.cron) for entry in SCHEDULE}
    assert table == {
        "refresh-continuous-aggregates-hourly": ("refresh_aggregates", "0 * * * *"),
        "backup-database-daily": ("backup_database", "0 3 * * *"),
        "cleanup-old-tasks-daily": ("cleanup_old_jobs", "0 4 * * *"),
        "daily-summary-reports": ("send_daily_summary_reports", "0 18 * * *"),
        "weekly-reports-generation": ("weekly_reports_generation", "0 6 * * 1"),
        "weekly-kpis-calculation": ("calculate_weekly_kpis", "0 7 * * 1"),
        "monthly-ml-retraining": ("retrain_all_ml_models", "0 2 1 * *"),
        "cleanup-old-sensor-data": ("cleanup_old_sensor_data", "0 5 1 * *"),
        "health-check-periodic": ("health_check", "0 */6 * * *"),
        "anomalies-detection-periodic": ("detect_anomalies", "0 */6 * * *"),
        "broker-maintenance": ("broker_maintenance", "* * * * *"),
        "search-index-changes": ("index_changes", "*/2 * * * *"),
        "search-optimize-daily": ("optimize_search_index", "30 1 * * *"),
    }
    entries_by_name()  # no duplicate names
    # Daily and longer catch up; hourly and shorter do not. The backup is never dropped as late.
    for entry in SCHEDULE:
        assert entry.catch_up == (entry.cron.split()[1] not in ("*", "*/6")), entry.name
    assert entries_by_name()["backup-database-daily"].late_after_ms is None


def test_every_registered_entry_resolves_and_its_args_validate(clean_redis: redis.Redis) -> None:
    import actors  # noqa: F401  (every family registers its jobs)

    # The maintenance family is always there; the clock keeps all its entries.
    running = clock(clean_redis, *SCHEDULE)
    maintenance = {
        "refresh_aggregates",
        "backup_database",
        "cleanup_old_jobs",
        "health_check",
        "calculate_weekly_kpis",
        "cleanup_old_sensor_data",
        "broker_maintenance",
    }
    assert maintenance <= {entry.actor for entry in running.entries}
    assert {entry.actor for entry in running.entries} == {
        entry.actor for entry in SCHEDULE if entry.actor in REGISTRY
    }
