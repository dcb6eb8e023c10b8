"""Faults of Redis itself: restarts with and without persistence, a stall, an outage at enqueue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from runtime import RECOVERED_KEY, State
from tests.reliability.stack import SCALE, Report, Stack
from tests.support.polling import wait_for


def test_redis_restarted_with_aof_loses_nothing_and_delayed_jobs_still_run(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given Redis with AOF (fsync always), and running, delayed and retrying jobs
    stack = stack_factory(appendonly=True, appendfsync="always")
    stack.start_api()
    stack.start_worker(threads=4)
    stack.start_worker(threads=4)
    n = 60 * SCALE
    run = uuid.uuid4().hex[:6]
    keys = {f"now-{run}-{i}": {"ms": 100} for i in range(n)}
    keys |= {f"retrying-{run}-{i}": {"ms": 10, "fail_times": 1} for i in range(n)}
    with stack.maintenance(every_s=2):
        for key, options in keys.items():
            stack.submit("rel_effect", {"key": key, **options})
        delayed = [f"delayed-{run}-{i}" for i in range(n)]
        for key in delayed:
            assert stack.api is not None
            response = stack.api.post(
                "/api/jobs/rel_effect?delay_ms=3000", json={"key": key, "ms": 10}
            )
            assert response.status_code == 202, response.text
        # When Redis is killed and restarted while workers hold delayed and retrying messages
        wait_for(lambda: len(stack.effects()) >= n // 2, timeout=60, what="some progress")
        stack.redis.kill()
        time.sleep(2)
        stack.redis.start()
        restarted = time.monotonic()
        # Then every job runs: the delayed and retrying ones too (stock Dramatiq: stuck in a
        # living worker's ack set, issue 527)
        everything = [*keys, *delayed]
        stack.wait_effects(everything, timeout=120)
        recovery = time.monotonic() - restarted
    expected = {key: 1 + options.get("fail_times", 0) for key, options in keys.items()}
    report = stack.report(
        "redis-restart-aof", everything, recovery_s=recovery, expected_executions=expected
    )
    show(report)
    assert report.lost == 0 and report.dead_lettered == 0
    assert report.duplicates <= 8  # at most the jobs running when Redis died


def test_redis_restarted_without_persistence_the_loss_is_detected_and_resent(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given a backlog accepted by the API, and Redis without any persistence
    stack = stack_factory(appendonly=False)
    stack.start_api()
    stack.start_worker(threads=2)
    n = 100 * SCALE
    tasks = stack.submit_effects(n, ms=150)
    wait_for(lambda: len(stack.effects()) >= n // 10, timeout=60, what="some progress")
    # When Redis crashes and comes back empty: queues and job records are gone
    stack.redis.kill()
    stack.redis.start()
    restarted = time.monotonic()
    with stack.maintenance(every_s=2):
        # Then broker maintenance finds the accepted jobs that vanished in the database journal
        # and sends them again
        stack.wait_effects(list(tasks), timeout=180)
        recovery = time.monotonic() - restarted
    resent = int(stack.redis.client.get(RECOVERED_KEY) or 0)
    report = stack.report(
        "redis-restart-no-persistence",
        list(tasks),
        recovery_s=recovery,
        notes={"vanished_and_resent": resent},
    )
    show(report)
    assert report.lost == 0 and resent > 0
    assert report.duplicates <= 4  # at most the jobs running when Redis died


def test_redis_stalled_nine_seconds_during_acks_runs_nothing_twice(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given workers acknowledging jobs (production heartbeat timeout: a stall is not a death)
    stack = stack_factory(WORKER_HEARTBEAT_TIMEOUT_MS="30000")
    stack.start_api()
    stack.start_worker(threads=4)
    stack.start_worker(threads=4)
    n = 300 * SCALE
    tasks = stack.submit_effects(n, ms=40)
    wait_for(lambda: len(stack.effects()) >= n // 4, timeout=60, what="some progress")
    # When Redis stops answering for 9 s (SIGSTOP), longer than the 5 s socket timeout
    stack.redis.pause()
    time.sleep(9)
    stack.redis.resume()
    resumed = time.monotonic()
    # Then nothing runs twice (stock: the timed-out ack is dropped, Dramatiq issue 894) and
    # nothing stays stuck in an ack set
    stack.wait_effects(list(tasks), timeout=120)
    recovery = time.monotonic() - resumed
    wait_for(lambda: stack.stuck_in_acks() == 0, timeout=30, what="ack sets to drain")
    report = stack.report("redis-stalled-9s", list(tasks), recovery_s=recovery)
    show(report)
    assert report.lost == 0 and report.duplicates == 0 and report.stuck_in_acks == 0


def test_redis_down_at_enqueue_is_a_fast_503_and_a_keyed_retry_makes_one_job(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    stack = stack_factory()
    # (Store and forward off: with it, the API accepts the job into the journal; test_deferred.)
    api = stack.start_api(DEFERRED_MAX_JOBS="0")
    key = f"down-{uuid.uuid4().hex[:8]}"
    body = {"key": key, "ms": 0}
    headers = {"Idempotency-Key": f"client-{key}"}
    # Given Redis down
    stack.redis.kill()
    started = time.monotonic()
    refused = api.post("/api/jobs/rel_effect", json=body, headers=headers)
    elapsed = time.monotonic() - started
    # Then the API answers 503 within 1 s with a clear message
    assert refused.status_code == 503 and elapsed < 1.0, (refused.status_code, elapsed)
    assert "Redis" in refused.json()["detail"] and refused.headers["Retry-After"]
    # When Redis is back and the client retries with the same Idempotency-Key, twice
    stack.redis.start()
    first = api.post("/api/jobs/rel_effect", json=body, headers=headers)
    again = api.post("/api/jobs/rel_effect", json=body, headers=headers)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["task_id"] == again.json()["task_id"] and again.json()["duplicate"]
    # A different request under the same key is refused
    other = api.post("/api/jobs/rel_effect", json={**body, "ms": 5}, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    # Then exactly one job exists and runs once
    stack.start_worker(threads=2)
    stack.wait_effects([key], timeout=60)
    task_id = first.json()["task_id"]
    wait_for(
        lambda: (r := stack.record(task_id)) and r.state == State.SUCCESS, timeout=30, what="done"
    )
    time.sleep(1)
    report = stack.report("redis-down-at-enqueue", [key], notes={"503_after_s": elapsed})
    show(report)
    assert stack.executions()[key] == 1 and report.duplicates == 0
