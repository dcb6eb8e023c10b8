"""The console's job list on a real Redis: newest first from the state indexes, exact resume
positions across pages, filters, and a bounded scan for a rare filter."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from api.console import jobs_query
from api.console.jobs_query import job_page
from ops.local_redis import RedisServer
from runtime import JobRecords, State


@pytest.fixture()
def store(redis_server: RedisServer) -> Iterator[JobRecords]:
    """Job records under a prefix of their own, so other tests' records do not count."""
    prefix = f"gaveurs:test-console-{uuid.uuid4().hex[:8]}:"
    yield JobRecords(redis_server.client, retention_s=3600, prefix=prefix)
    client: redis.Redis = redis_server.client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def add(
    store: JobRecords, n: int, *, name: str = "slow", queue: str = "default", client: str = ""
) -> list[str]:
    ids = []
    for i in range(n):
        task_id = uuid.uuid4().hex
        fields = {"task_name": name, "queue": queue, "args": json.dumps({"lot_id": 3000 + i})}
        store.transition(
            task_id, State.PENDING, epoch=0, mode="create", fields={**fields, "client": client}
        )
        ids.append(task_id)
    return ids


def newest_first(store: JobRecords, index: str = "all") -> list[str]:
    return [m.decode() for m in store.client.zrevrange(f"{store.prefix}{index}", 0, -1)]


def test_pages_follow_each_other_without_gap_or_repeat(store: JobRecords) -> None:
    # Given 7 jobs
    add(store, 7)
    # When they are read 3 at a time, each page resuming where the last stopped
    seen, position, pages = [], 0, 0
    while position is not None:
        page = job_page(store, position=position, limit=3)
        seen += [job.task_id for job in page.jobs]
        position = page.next_position
        pages += 1
    # Then every job came once, newest first, in 3 pages
    assert seen == newest_first(store)
    assert pages == 3


def test_state_queue_name_and_argument_filters(store: JobRecords) -> None:
    add(store, 3, name="slow")
    reports = add(store, 2, name="generate_pdf_report", queue="exports")
    store.transition(reports[0], State.SUCCESS, epoch=0)

    assert {j.task_id for j in job_page(store, queue="exports").jobs} == set(reports)
    assert [j.task_id for j in job_page(store, state=State.SUCCESS).jobs] == [reports[0]]
    assert len(job_page(store, name="slow").jobs) == 3
    # Arguments are searched as name=value text
    found = job_page(store, args_text="lot_id=3001").jobs
    assert [store.get(j.task_id).args for j in found] == [{"lot_id": 3001}] * 2  # type: ignore[union-attr]


def test_the_submitting_client_filters_and_is_shown(store: JobRecords) -> None:
    # Given jobs from the farm app and from the clock
    farm = add(store, 2, client="farm-app")
    add(store, 3, client="scheduler")
    # When the list is filtered by the farm app's client name
    page = job_page(store, client="farm-app")
    # Then only its jobs come, each carrying the name the list shows
    assert {j.task_id for j in page.jobs} == set(farm)
    assert {j.client for j in page.jobs} == {"farm-app"}
    assert job_page(store, client="nobody").jobs == []


def test_a_filtered_page_resumes_after_the_last_match(store: JobRecords) -> None:
    # Given matches interleaved with other jobs
    for _ in range(4):
        add(store, 1, queue="exports")
        add(store, 2)
    first = job_page(store, queue="exports", limit=2)
    second = job_page(store, queue="exports", position=first.next_position or 0, limit=2)
    # Then the two pages hold the four matches, none twice
    ids = [j.task_id for j in first.jobs + second.jobs]
    assert len(ids) == len(set(ids)) == 4


def test_a_rare_filter_scans_a_bounded_number_of_records(
    store: JobRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given more records than one request may read (a small bound, to keep the test fast)
    monkeypatch.setattr(jobs_query, "MAX_SCANNED", 20)
    monkeypatch.setattr(jobs_query, "CHUNK", 10)
    add(store, 35)
    # When a name nobody has is asked for
    page = job_page(store, name="nobody")
    # Then the request stops after the bound and offers to look further back
    assert page.jobs == []
    assert page.scanned == 20
    assert page.next_position == 20
