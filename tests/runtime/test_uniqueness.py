"""Uniqueness keys against the session's real Redis: a finished holder frees its key at once."""

from __future__ import annotations

import uuid

from ops.local_redis import RedisServer
from runtime import State, broker, records
from tests.support import jobs


def test_a_key_whose_job_ended_is_free_before_its_release_runs(
    redis_server: RedisServer,
) -> None:
    # Given a unique job, and its record already saying SUCCESS (the release comes after it)
    payload = jobs.Slow(key=uuid.uuid4().hex, seconds=1)
    first = jobs.unique_slow.submit(payload)
    assert jobs.unique_slow.submit(payload) == type(first)(first.task_id, duplicate=True)
    records().transition(first.task_id, State.SUCCESS, epoch=0)
    try:
        # When the same work is submitted again
        second = jobs.unique_slow.submit(payload)
        # Then it is a new job, not the finished one
        assert not second.duplicate and second.task_id != first.task_id
    finally:
        broker().flush("default")
