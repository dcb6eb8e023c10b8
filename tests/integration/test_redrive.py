"""A dead-lettered job re-driven (runtime/control.py), with a real worker process: its record is
cleared in the same call that queues it again, so a worker that starts it at once never runs it
under the old failure; a re-drive refused leaves everything as it was."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import pytest
import redis

from domain.errors import Conflict
from runtime import Control, JobRecord, State, broker, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess


def _record_in(task_id: str, *states: State) -> JobRecord | None:
    record = records().get(task_id)
    return record if record is not None and record.state in states else None


def _dead_letter(**options: Any) -> tuple[str, str]:
    """A `broken` job run once by the worker: its key, and its task id once it failed for good
    and sits among the dead letters."""
    k = f"redrive-{uuid.uuid4().hex[:8]}"
    message = jobs.broken.message(jobs.Keyed(key=k))
    message.options.update(options)
    task_id = broker().enqueue(message).message_id
    failed = wait_for(lambda: _record_in(task_id, State.FAILURE), what="FAILURE")
    assert failed.error and failed.dead_letter_id and failed.attempts == 1
    return k, task_id


def test_a_redriven_job_started_before_the_redrive_returns_ends_without_its_old_error(
    worker: WorkerProcess, clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job that failed for good and sits among the dead letters, its data since fixed
    k, task_id = _dead_letter()
    clean_redis.set(f"{jobs.PREFIX}fixed:{k}", 1)

    # When it is re-driven, and the worker starts it before the re-drive's own call returns
    # (held here until it has: on a loaded machine that gap is a scheduling slice)
    enqueue = broker().enqueue

    def enqueue_then_let_it_start(message: dramatiq.Message[Any], **options: Any) -> Any:
        sent = enqueue(message, **options)
        wait_for(lambda: _record_in(task_id, State.SUCCESS), what="the re-driven run's end")
        return sent

    monkeypatch.setattr(broker(), "enqueue", enqueue_then_let_it_start)
    assert Control(broker(), records()).requeue_dead_letter("default", task_id) == task_id

    # Then the second run's SUCCESS carries none of the first run's failure
    done = records().get(task_id)
    assert done is not None and done.state == State.SUCCESS
    assert done.error is None and not done.failure_reason and not done.dead_letter_id
    assert done.redrives == 1 and done.attempts == 2
    assert done.completed_at and done.result == {"status": "success", "key": k}
    # And its timeline keeps the failed attempt before the one that succeeded
    assert [a["outcome"] for a in done.timeline] == ["FAILURE", "SUCCESS"]


def test_a_redrive_refused_as_a_duplicate_leaves_the_failure_as_it_was(
    worker: WorkerProcess, clean_redis: redis.Redis
) -> None:
    # Given a unique job that failed for good, and a new run of the same key waiting (delayed)
    unique = f"lot-{uuid.uuid4().hex[:8]}"
    k, task_id = _dead_letter(unique_key=unique)
    before = records().get(task_id)
    waiting = jobs.broken.message(jobs.Keyed(key=k))
    waiting.options["unique_key"] = unique
    broker().enqueue(waiting, delay=60_000)

    # When the failed one is re-driven, it is refused: the key is held
    control = Control(broker(), records())
    with pytest.raises(Conflict, match=waiting.message_id):
        control.requeue_dead_letter("default", task_id)

    # Then its record and its dead letter are as they were, and the waiting run still waits
    assert records().get(task_id) == before
    _, letters = control.dead_letters("default", offset=0, limit=100)
    assert [letter.task_id for letter in letters] == [task_id]
    assert _record_in(waiting.message_id, State.PENDING)


def test_a_redrive_enqueued_again_leaves_the_run_it_started_alone(clean_redis: redis.Redis) -> None:
    # Given a failed job whose re-drive is queued (delayed here, so no worker takes it)
    message = jobs.broken.message(jobs.Keyed(key=f"redrive-{uuid.uuid4().hex[:8]}"))
    task_id = message.message_id
    records().transition(
        task_id, State.FAILURE, epoch=0, fields={"error": '{"type": "InvalidInput"}'}
    )
    redrive = message.copy(options={"redrives": 1})
    broker().enqueue(redrive, delay=60_000)
    queued = records().get(task_id)
    assert queued is not None and queued.state == State.PENDING and queued.error is None

    # When its run starts, and the same re-drive is then enqueued again (a recovery's resend)
    started = records().apply(task_id, State.STARTED, epoch=-1)  # at the re-drive's epoch
    assert started is not None and started.applied
    broker().enqueue(redrive.copy(), delay=60_000)

    # Then the record stays with the run that started
    record = records().get(task_id)
    assert record is not None and record.state == State.STARTED and record.redrives == 1
