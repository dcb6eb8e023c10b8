"""Debounced jobs (issue 21, part 6) on the session's real Redis and a real worker: the
requests within a window run once, and a request made once that run started gets a new one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops.local_redis import RedisServer
from runtime import Batch, Payload, State, job, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer) -> Iterator[WorkerProcess]:
    process = WorkerProcess(redis_server.client)
    yield process
    process.stop()


def _count(client: Any, key: str, what: str) -> int:
    return int(client.get(f"{jobs.PREFIX}{what}:{key}") or 0)


def test_fifty_requests_in_the_window_run_once(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    # Given 50 requests for the same work, sent within the window
    key = uuid.uuid4().hex
    sent = time.monotonic()
    submitted = [jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=0.05)) for _ in range(50)]
    assert time.monotonic() - sent < jobs.DEBOUNCE_MS / 1000, "the machine is too slow for this"

    # Then every caller holds the task id of the one run, the first alone created it
    task_ids = {s.task_id for s in submitted}
    assert len(task_ids) == 1 and [s.duplicate for s in submitted] == [False] + [True] * 49
    task_id = task_ids.pop()
    record = records().get(task_id)
    assert record is not None and record.state is State.PENDING and record.eta is not None
    # and that run, started after the last request, runs once
    wait_for(lambda: _count(redis_server.client, key, "done") == 1, what="the debounced run")
    time.sleep(jobs.DEBOUNCE_MS / 1000)
    assert _count(redis_server.client, key, "count") == 1
    done = records().get(task_id)
    assert done is not None and done.state is State.SUCCESS
    # and a send() joins the same way: its message carries the pending run's id
    key2 = uuid.uuid4().hex
    first = jobs.debounced_slow.send(jobs.Slow(key=key2, seconds=0.05))
    assert jobs.debounced_slow.send(jobs.Slow(key=key2, seconds=1)).message_id == first.message_id


def test_a_request_after_the_run_started_gets_a_new_run(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    # Given a debounced run that has started (its data may predate later requests)
    key = uuid.uuid4().hex
    first = jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=1.5))
    wait_for(
        lambda: (r := records().get(first.task_id)) and r.state is State.STARTED,
        what="the first run to start",
    )

    # When the same work is requested again
    second = jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=0.05))
    third = jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=0.05))

    # Then it is a new run, which the next requests join, and both runs happen
    assert not second.duplicate and second.task_id != first.task_id
    assert third.duplicate and third.task_id == second.task_id
    wait_for(lambda: _count(redis_server.client, key, "done") == 2, timeout=30, what="two runs")


def test_a_request_joining_a_cancelled_run_gets_a_new_run(redis_server: RedisServer) -> None:
    # Given a pending run that was cancelled (its record is REVOKED)
    key = uuid.uuid4().hex
    first = jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=0.05))
    records().transition(first.task_id, State.REVOKED, epoch=0)
    # Then the next request does not join it
    second = jobs.debounced_slow.submit(jobs.Slow(key=key, seconds=0.05))
    assert not second.duplicate and second.task_id != first.task_id


def test_bad_debounce_declarations_fail_at_import_saying_why() -> None:
    class Work(Payload):
        site: str

    with pytest.raises(ValueError, match="go together"):
        job(queue="default", payload=Work, debounce="{site}")
    with pytest.raises(ValueError, match="not both"):
        job(queue="default", payload=Work, debounce="{site}", debounce_ms=10, unique="{site}")
    with pytest.raises(ValueError, match="debounce='{lot}' names"):
        job(queue="default", payload=Work, debounce="{lot}", debounce_ms=10)
    with pytest.raises(ValueError, match="positive"):
        job(queue="default", payload=Work, debounce="{site}", debounce_ms=0)


def test_refresh_aggregates_asked_fifty_times_is_one_pending_run(
    api_client: Any, auth: dict[str, str], redis_server: RedisServer
) -> None:
    # Given no refresh pending (another test may have asked for one)
    redis_server.client.delete("gaveurs:debounce:refresh_aggregates:refresh-True")
    # When the full refresh is asked for 50 times through the API
    answers = [
        api_client.post("/api/tasks/maintenance/refresh-aggregates?full=true", headers=auth)
        for _ in range(50)
    ]
    # Then every answer is a 202 naming the same task, which waits out the declared window
    assert {a.status_code for a in answers} == {202}
    task_ids = {a.json()["task_id"] for a in answers}
    assert len(task_ids) == 1
    record = records().get(task_ids.pop())
    assert record is not None and record.state is State.PENDING
    assert record.eta is not None and record.eta - record.enqueued_at >= 60_000


def test_bad_batch_declarations_fail_at_import_saying_why() -> None:
    class Items(Payload):
        items: list[str] = []

    with pytest.raises(ValueError, match="'rows' is not a field of Items"):
        job(queue="default", payload=Items, batch=Batch(field="rows", window_ms=10))
    with pytest.raises(ValueError, match="no unique= or debounce="):
        job(queue="default", payload=Items, batch=Batch(field="items", window_ms=10), unique="x")
    with pytest.raises(ValueError, match="positive"):
        job(queue="default", payload=Items, batch=Batch(field="items", window_ms=0))
    with pytest.raises(TypeError, match="not a batched job"):
        jobs.slow.add(jobs.Slow(key="k", seconds=1))
