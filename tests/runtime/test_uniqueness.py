"""Uniqueness keys against the session's real Redis: a finished holder frees its key at once."""

from __future__ import annotations

import uuid

import pytest

from ops.local_redis import RedisServer
from runtime import REDIS_ERRORS, State, broker, records
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


def test_a_failed_enqueue_gives_its_uniqueness_key_back(redis_server: RedisServer) -> None:
    # Given this thread's connections open, then cut by Redis (a failover drops them the same
    # way): the claim goes through the pool, which reconnects, the enqueue script through this
    # thread's own connection, which fails
    warm = jobs.unique_slow.submit(jobs.Slow(key=uuid.uuid4().hex, seconds=0.1))
    redis_server.client.client_kill_filter(_type="normal", skipme=True)
    payload = jobs.Slow(key=uuid.uuid4().hex, seconds=1)
    try:
        with pytest.raises(REDIS_ERRORS):
            jobs.unique_slow.submit(payload)
        # When the client retries the same work (after its 503)
        retried = jobs.unique_slow.submit(payload)
        # Then it is a new job: the key does not name the job that was never enqueued
        assert not retried.duplicate
        assert records().get(retried.task_id) is not None
    finally:
        records().delete(warm.task_id)
        broker().flush("default")
