"""A job's life through real worker processes and the HTTP API (DESIGN "A job's life")."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from ops.local_redis import RedisServer
from tests.support import jobs
from tests.support.polling import status, wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def key() -> str:
    return uuid.uuid4().hex[:12]


def test_job_goes_pending_started_with_progress_then_success(
    worker: WorkerProcess, api_client: Any
) -> None:
    # Given a slow job sent while the worker is busy elsewhere for a moment
    message = jobs.slow.send(jobs.Slow(key=key(), seconds=1.5))
    seen = {status(api_client, message.message_id)["status"]}

    # When we poll its status through the API
    running = wait_for(
        lambda: (body := status(api_client, message.message_id))["progress"] > 0 and body,
        what="progress",
    )
    seen.add(running["status"])
    done = wait_state(api_client, message.message_id, "SUCCESS")

    # Then it went through STARTED with rising progress to SUCCESS with its result
    assert seen & {"PENDING", "STARTED"}
    assert running["status"] == "STARTED" and 0 < running["progress"] < 100
    assert running["progress_note"].startswith("step")
    assert done["progress"] == 100 and done["result"]["status"] == "success"
    assert done["task_name"] == "slow" and done["queue"] == "default"
    assert done["attempts"] == 1 and done["worker"]
    assert done["started_at"] <= done["completed_at"]


def test_transient_failure_is_retried_with_growing_delays_then_succeeds(
    worker: WorkerProcess, api_client: Any, redis_server: RedisServer
) -> None:
    # Given a job whose first three attempts hit a transient outage
    k = key()
    message = jobs.flaky.send(jobs.Flaky(key=k, failures=3))

    # When it runs, the record shows RETRY between attempts
    wait_state(api_client, message.message_id, "RETRY")
    done = wait_state(api_client, message.message_id, "SUCCESS", timeout=60)

    # Then it succeeded on the 4th attempt after delays that grew (500 ms base, doubling)
    assert done["attempts"] == 4 and done["result"]["attempts"] == 4
    times = [float(t) for t in redis_server.client.lrange(f"{jobs.PREFIX}attempts:{k}", 0, -1)]
    delays = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(delays) == 3
    assert delays[0] >= 0.5 and delays[0] < delays[1] < delays[2], delays
    # And its status keeps each attempt: the three retries with their error and backoff
    history = done["attempt_history"]
    assert [(a["attempt"], a["outcome"]) for a in history] == [
        (1, "RETRY"), (2, "RETRY"), (3, "RETRY"), (4, "SUCCESS"),
    ]  # fmt: skip
    assert history[2]["error_type"] == "TransientError"
    assert history[2]["error_message"] == "simulated outage 3/3"
    backoffs = [
        datetime.fromisoformat(a["retry_at"]) - datetime.fromisoformat(a["ended_at"])
        for a in history[:3]
    ]
    assert timedelta(seconds=0.25) <= backoffs[0] < backoffs[2], backoffs


def test_permanent_failure_is_dead_lettered_at_once_then_redriven(
    worker: WorkerProcess, api_client: Any, redis_server: RedisServer, auth: dict[str, str]
) -> None:
    # Given a job that fails with a permanent error
    k = key()
    message = jobs.broken.send(jobs.Keyed(key=k))
    failed = wait_state(api_client, message.message_id, "FAILURE")

    # Then it was tried once, not retried, and its reason is kept
    assert failed["attempts"] == 1
    assert failed["error"] == f"InvalidInput: lot {k} has no feeding records"
    time.sleep(0.5)
    assert redis_server.client.get(f"{jobs.PREFIX}count:{k}") == b"1"

    # And it is listed among the dead letters with that reason
    page = api_client.get("/api/queues/default/dead-letters").json()
    listed = [d for d in page["dead_letters"] if d["task_id"] == message.message_id]
    assert listed and listed[0]["error"].startswith("InvalidInput") and listed[0]["reason"]

    # When the data is fixed and the job re-driven through the API
    redis_server.client.set(f"{jobs.PREFIX}fixed:{k}", 1)
    response = api_client.post(
        f"/api/queues/default/dead-letters/{message.message_id}/requeue", headers=auth
    )
    assert response.status_code == 200, response.text

    # Then the same task id runs again to SUCCESS and leaves the dead letters
    done = wait_state(api_client, message.message_id, "SUCCESS")
    assert done["error"] is None and done["attempts"] == 2
    page = api_client.get("/api/queues/default/dead-letters").json()
    assert message.message_id not in {d["task_id"] for d in page["dead_letters"]}


def test_cancel_a_queued_job_skips_it(
    worker: WorkerProcess, api_client: Any, redis_server: RedisServer, auth: dict[str, str]
) -> None:
    # Given a job waiting in the queue (delayed by 2 s)
    k = key()
    message = jobs.slow.send(jobs.Slow(key=k, seconds=0.1), delay_ms=2000)
    assert status(api_client, message.message_id)["status"] == "PENDING"

    # When it is cancelled
    response = api_client.delete(f"/api/tasks/cancel/{message.message_id}", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    # Then it never runs and stays REVOKED
    time.sleep(3.5)
    assert status(api_client, message.message_id)["status"] == "REVOKED"
    assert redis_server.client.get(f"{jobs.PREFIX}count:{k}") is None
    # And cancelling it again is a conflict, not a silent success
    again = api_client.delete(f"/api/tasks/cancel/{message.message_id}", headers=auth)
    assert again.status_code == 409


def test_cancel_a_running_job_interrupts_it(
    worker: WorkerProcess, api_client: Any, redis_server: RedisServer, auth: dict[str, str]
) -> None:
    k = key()
    message = jobs.slow.send(jobs.Slow(key=k, seconds=20))
    wait_state(api_client, message.message_id, "STARTED")

    response = api_client.delete(f"/api/tasks/cancel/{message.message_id}", headers=auth)
    assert response.status_code == 200
    assert response.json()["previous_status"] == "STARTED"

    # The abort watcher interrupts the thread within about a second; it is not retried.
    wait_for(lambda: redis_server.client.get(f"{jobs.PREFIX}count:{k}"), what="start")
    time.sleep(3)
    assert status(api_client, message.message_id)["status"] == "REVOKED"
    assert redis_server.client.get(f"{jobs.PREFIX}done:{k}") is None
    assert redis_server.client.get(f"{jobs.PREFIX}count:{k}") == b"1"


def test_unique_job_returns_the_first_task_while_active(
    worker: WorkerProcess, api_client: Any
) -> None:
    k = key()
    first = jobs.unique_slow.submit(jobs.Slow(key=k, seconds=1.5))
    second = jobs.unique_slow.submit(jobs.Slow(key=k, seconds=1.5))
    other = jobs.unique_slow.submit(jobs.Slow(key=key(), seconds=0.1))

    assert not first.duplicate and second.duplicate
    assert second.task_id == first.task_id and other.task_id != first.task_id

    wait_state(api_client, first.task_id, "SUCCESS")
    third = jobs.unique_slow.submit(jobs.Slow(key=k, seconds=0.1))
    assert not third.duplicate and third.task_id != first.task_id


def test_soft_time_limit_keeps_the_partial_result(worker: WorkerProcess, api_client: Any) -> None:
    message = jobs.anytime.send(jobs.Slow(key=key(), seconds=30))
    done = wait_state(api_client, message.message_id, "SUCCESS", timeout=10)
    assert done["result"]["status"] == "partial" and done["result"]["best"] > 10


def test_invalid_payload_fails_at_once_with_its_reason(
    worker: WorkerProcess, api_client: Any
) -> None:
    # A message sent around the typed API (e.g. by an old client) is validated on receipt.
    message = jobs.slow.actor.send(key="", seconds=-1)
    failed = wait_state(api_client, message.message_id, "FAILURE")
    assert failed["attempts"] == 1
    assert failed["error"].startswith("InvalidInput: invalid payload for slow")


def test_hard_time_limit_interrupts_and_fails_without_retry(
    worker: WorkerProcess, api_client: Any, redis_server: RedisServer
) -> None:
    k = key()
    message = jobs.overrun.send(jobs.Slow(key=k, seconds=30))
    failed = wait_state(api_client, message.message_id, "FAILURE", timeout=15)
    assert failed["error"].startswith("TimeLimitExceeded")
    assert failed["attempts"] == 1
    assert redis_server.client.get(f"{jobs.PREFIX}done:{k}") is None
