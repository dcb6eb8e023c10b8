"""The forwarder of deferred jobs (runtime/deferred.py) against the session's real Redis and
SQLite: what it sends, what it finds sent already, what Redis says is a duplicate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import pytest

from domain.platform import deferred
from runtime import Outbox, State, broker, deferred_record, engine, forward, records
from runtime.deferred import LOCK_KEY
from tests.support import jobs


@pytest.fixture()
def outbox(demo_database: str) -> Iterator[Outbox]:
    """An outbox whose own drain never runs during the test (the test forwards by hand)."""
    broker().flush("default")
    yield Outbox(
        broker=broker(), records=records(), engine=engine(), max_jobs=1000, drain_poll_s=3600
    )
    forward(broker(), records(), engine())  # leave nothing pending for other tests
    broker().flush("default")


def deferral_of(message: dramatiq.Message[object]) -> deferred.Deferral:
    return deferred.Deferral(
        task_id=message.message_id,
        actor=message.actor_name,
        queue="default",
        body=message.encode().decode(),
    )


def _queued() -> int:
    return int(broker().client.llen("dramatiq:default"))


def test_deferred_jobs_are_sent_once_and_then_read_from_redis(outbox: Outbox) -> None:
    # Given two jobs deferred (Redis was down when they came)
    first = outbox.defer(
        jobs.slow, jobs.Slow(key=uuid.uuid4().hex, seconds=1), idempotency_ttl_s=60
    )
    second = outbox.defer(
        jobs.slow, jobs.Slow(key=uuid.uuid4().hex, seconds=1), idempotency_ttl_s=60
    )
    assert first.deferred and second.deferred
    pending = deferred_record(engine(), first.task_id)
    assert pending is not None and pending.state == State.PENDING
    # When the forwarder runs twice
    sent = forward(broker(), records(), engine())
    again = forward(broker(), records(), engine())
    # Then each was sent once, and its record lives in Redis now
    assert (sent.sent, sent.drained, again.sent) == (2, True, 0)
    assert _queued() == 2
    record = records().get(first.task_id)
    assert record is not None and record.state == State.PENDING
    assert deferred_record(engine(), first.task_id) is None


def test_a_job_that_reached_redis_before_its_mark_is_not_sent_again(outbox: Outbox) -> None:
    # Given a deferred job whose message reached Redis, but whose forwarder died before it
    # marked the entry (or whose first enqueue's answer was lost in the outage)
    submitted = outbox.defer(
        jobs.slow, jobs.Slow(key=uuid.uuid4().hex, seconds=1), idempotency_ttl_s=60
    )
    message: dramatiq.Message[object] = jobs.slow.message(
        jobs.Slow(key="same", seconds=1)
    )._replace(message_id=submitted.task_id)
    broker().enqueue(message)
    # When the forwarder runs
    outcome = forward(broker(), records(), engine())
    # Then it marks it sent without a second message
    assert (outcome.sent, outcome.already_sent) == (0, 1)
    assert _queued() == 1


def test_a_unique_job_accepted_directly_meanwhile_supersedes_the_deferred_one(
    outbox: Outbox,
) -> None:
    payload = jobs.Slow(key=uuid.uuid4().hex, seconds=1)
    # Given a unique job deferred, then the same work accepted directly once Redis was back
    waiting = outbox.defer(jobs.unique_slow, payload, idempotency_ttl_s=60)
    direct = jobs.unique_slow.submit(payload)
    assert not direct.duplicate
    # When the forwarder runs
    outcome = forward(broker(), records(), engine())
    # Then the deferred job is not sent; its status names the job that does the work
    assert (outcome.sent, outcome.superseded) == (0, 1)
    assert _queued() == 1
    record = deferred_record(engine(), waiting.task_id)
    assert record is not None and record.state == State.REVOKED
    assert record.error is not None and direct.task_id in record.error["message"]


def test_one_forwarder_at_a_time(outbox: Outbox) -> None:
    outbox.defer(jobs.slow, jobs.Slow(key=uuid.uuid4().hex, seconds=1), idempotency_ttl_s=60)
    broker().client.set(LOCK_KEY, "another forwarder", px=5000)
    try:
        assert forward(broker(), records(), engine()).busy
        assert _queued() == 0
    finally:
        broker().client.delete(LOCK_KEY)


def test_a_job_this_process_does_not_declare_waits_for_one_that_does(outbox: Outbox) -> None:
    # Given a deferred job of another release (a job this process does not declare), then one
    # of ours accepted after it
    newer = dramatiq.Message(
        queue_name="default", actor_name="job_of_a_newer_release", args=(), kwargs={}, options={}
    )
    deferral = deferral_of(newer)
    deferred.defer(engine(), deferral, max_jobs=1000)
    ours = outbox.defer(jobs.slow, jobs.Slow(key=uuid.uuid4().hex, seconds=1), idempotency_ttl_s=60)
    try:
        # When this process forwards
        outcome = forward(broker(), records(), engine())
        # Then neither is sent (sent without its record, the newer job would later be taken
        # for lost and sent again; ours keeps its place behind it), and the outcome says why
        assert (outcome.sent, outcome.drained) == (0, False)
        assert outcome.undeclared == "job_of_a_newer_release"
        assert _queued() == 0
        record = deferred_record(engine(), ours.task_id)
        assert record is not None and record.state == State.PENDING
    finally:
        # (the process that declares it sent it)
        deferred.mark_forwarded(engine(), [deferral.task_id])
    assert forward(broker(), records(), engine()).sent == 1
