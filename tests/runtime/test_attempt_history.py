"""The attempt timeline and per-minute counters the transition script keeps (lua/history_fn.lua),
driven through the real scripts on the test Redis, as a worker's hooks drive them."""

from __future__ import annotations

import json
import uuid

import redis

from runtime import (
    State,
    forget_minutes,
    merged_durations,
    percentile_ms,
    recent_minutes,
    records,
)


def forget_counters(client: redis.Redis) -> None:
    """No per-minute counter in Redis nor kept by this process: the charts start from zero."""
    keys = list(client.scan_iter("gaveurs:jobs:minute:*"))
    if keys:
        client.delete(*keys)
    forget_minutes()


def _error(kind: str, message: str) -> str:
    return json.dumps({"type": kind, "message": message, "traceback": "Traceback..."})


def _run(task_id: str, epoch: int, *, at_ms: int) -> None:
    records().transition(
        task_id,
        State.STARTED,
        epoch=epoch,
        fields={"started_at": at_ms, "worker": "host:1:Thread-1", "delivery": uuid.uuid4().hex},
    )


def _new_job(queue: str = "default") -> str:
    task_id = uuid.uuid4().hex
    records().transition(
        task_id,
        State.PENDING,
        epoch=0,
        mode="create",
        fields={"task_id": task_id, "task_name": "flaky", "queue": queue},
    )
    return task_id


def test_each_retry_is_kept_with_its_error_and_backoff(clean_redis: redis.Redis) -> None:
    # Given a job that fails twice with a transient error, then succeeds
    task_id = _new_job()
    for epoch in (0, 1):
        _run(task_id, epoch, at_ms=1_000 + epoch)
        records().transition(  # written at the next attempt's epoch, as Retries counted it
            task_id,
            State.RETRY,
            epoch=epoch + 1,
            fields={"error": _error("TransientError", f"outage {epoch}"), "eta": 9_000 + epoch},
        )
    _run(task_id, 2, at_ms=5_000)
    records().transition(task_id, State.SUCCESS, epoch=2, fields={"result": "{}"})

    # Then the record keeps the three attempts in order, not only the last error
    record = records().get(task_id)
    assert record is not None
    log = record.attempt_log
    assert [(a["attempt"], a["outcome"]) for a in log] == [
        (1, "RETRY"), (2, "RETRY"), (3, "SUCCESS"),
    ]  # fmt: skip
    assert log[0]["error_type"] == "TransientError" and log[0]["error_message"] == "outage 0"
    assert log[1]["retry_at"] == 9_001 and log[1]["started_at"] == 1_001
    assert log[2]["worker"] == "host:1:Thread-1" and "error_type" not in log[2]
    assert "retry_at" not in log[2]


def test_the_timeline_is_bounded_and_a_lost_delivery_is_shown(clean_redis: redis.Redis) -> None:
    # Given a job retried 25 times, then delivered twice for its last attempt (a worker died)
    task_id = _new_job()
    for epoch in range(25):
        _run(task_id, epoch, at_ms=epoch)
        records().transition(
            task_id, State.RETRY, epoch=epoch + 1, fields={"error": _error("E", "x" * 1000)}
        )
    _run(task_id, 25, at_ms=100)
    _run(task_id, 25, at_ms=200)
    records().transition(task_id, State.FAILURE, epoch=25, fields={"error": _error("E", "end")})

    # Then only the last 20 ends are kept, messages cut short, the lost delivery among them
    record = records().get(task_id)
    assert record is not None
    log = record.attempt_log
    assert len(log) == 20
    assert [a["outcome"] for a in log[-3:]] == ["RETRY", "LOST", "FAILURE"]
    assert log[-1]["attempt"] == 27 and log[-1]["error_message"] == "end"
    assert len(log[0]["error_message"]) == 300


def test_a_first_attempt_success_stores_no_timeline_but_shows_one(
    clean_redis: redis.Redis,
) -> None:
    # Given a job that succeeds at its first attempt (most jobs)
    task_id = _new_job()
    _run(task_id, 0, at_ms=1_000)
    records().transition(task_id, State.SUCCESS, epoch=0, fields={"completed_at": 1_500})
    # Then its hash holds no timeline (it stays small), yet the record shows that attempt
    assert not clean_redis.hexists(records().key(task_id), "attempt_log")
    record = records().get(task_id)
    assert record is not None
    assert record.timeline == [
        {"attempt": 1, "outcome": "SUCCESS", "started_at": 1_000, "ended_at": 1_500,
         "worker": "host:1:Thread-1"},
    ]  # fmt: skip


def test_a_job_cancelled_before_it_ran_has_no_attempt(clean_redis: redis.Redis) -> None:
    task_id = _new_job()
    records().transition(task_id, State.REVOKED, epoch=-1, mode="active")
    record = records().get(task_id)
    assert record is not None and record.timeline == []


def test_minute_counters_by_outcome_queue_and_duration(clean_redis: redis.Redis) -> None:
    # Given no counters, then attempts of about 2 s ending now:
    # two successes in `exports`, one failure in `default`
    forget_counters(clean_redis)
    for queue, state in (("exports", State.SUCCESS), ("exports", State.SUCCESS),
                         ("default", State.FAILURE)):  # fmt: skip
        task_id = _new_job(queue)
        seconds, micros = clean_redis.time()
        _run(task_id, 0, at_ms=seconds * 1000 + micros // 1000 - 2_000)
        records().transition(task_id, state, epoch=0)

    # Then the last two minutes (the minute may have turned meanwhile) count them
    minutes = recent_minutes(clean_redis, minutes=2)
    assert len(minutes) == 2 and minutes[1].start_ms - minutes[0].start_ms == 60_000
    assert sum(m.outcomes.get("SUCCESS", 0) for m in minutes) == 2
    assert sum(m.outcomes.get("FAILURE", 0) for m in minutes) == 1
    assert sum(m.queues.get("exports", 0) for m in minutes) == 2
    # And their durations give a p95 within one bucket of 2 s; the counters expire
    assert sum(sum(m.job_durations.get("flaky", {}).values()) for m in minutes) == 3
    p95 = percentile_ms(merged_durations(minutes), 95)
    assert p95 is not None and 1_500 <= p95 <= 2_700
    assert 3_600 < clean_redis.ttl(f"gaveurs:jobs:minute:{minutes[1].start_ms // 60_000}") <= 7_200


def test_percentile_of_buckets() -> None:
    assert percentile_ms({}, 95) is None
    # 95 fast attempts (~1 ms) and 5 slow ones (bucket 40: ~1 s): p95 is still fast, p96 slow
    buckets = {0: 95, 40: 5}
    assert percentile_ms(buckets, 95) == 2 ** (0.5 / 4)
    assert 900 < (percentile_ms(buckets, 96) or 0) < 1_200


def test_finished_minutes_are_read_once(clean_redis: redis.Redis) -> None:
    # Given the last hour read once
    forget_counters(clean_redis)
    recent_minutes(clean_redis, minutes=60)

    def commands() -> int:
        return int(clean_redis.info("stats")["total_commands_processed"])

    # When it is read again, only the minutes that may still change are asked of Redis
    before = commands()
    minutes = recent_minutes(clean_redis, minutes=60)
    # (INFO counts itself; 3 if the minute turned between the reads)
    assert commands() - before - 1 in (2, 3)
    assert len(minutes) == 60 and minutes[-1].start_ms - minutes[0].start_ms == 59 * 60_000
