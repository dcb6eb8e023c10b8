"""The `gaveurs` CLI against the test Redis and a real worker process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from ops.cli import app
from ops.local_redis import RedisServer
from runtime import State, broker, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

runner = CliRunner()


def gaveurs(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def as_json(*args: str, code: int = 0) -> Any:
    return json.loads(gaveurs(*args, "--json", code=code))


@pytest.fixture()
def empty_default(redis_server: RedisServer, demo_database: str) -> Iterator[redis.Redis]:
    # (the migrated database: the CLI's enqueues are journaled like the API's)
    broker().flush("default")
    yield redis_server.client
    broker().flush("default")


def test_schedules_lists_every_entry(clean_redis: redis.Redis) -> None:
    table = gaveurs("schedules")
    assert "backup-database-daily" in table and "0 3 * * *" in table
    body = as_json("schedules")
    assert body["schedulers_alive"] == 0
    names = {entry["name"] for entry in body["entries"]}
    assert {"broker-maintenance", "health-check-periodic"} <= names


def test_enqueue_show_list_cancel_without_a_worker(empty_default: redis.Redis) -> None:
    # Given a job submitted from the CLI with typed parameters, and no worker running
    key = uuid.uuid4().hex[:10]
    sent = as_json("enqueue", "slow", "--param", f"key={key}", "--param", "seconds=2")
    task_id = sent["task_id"]
    # Then it is PENDING, listed, shown in the status figures, and can be cancelled
    assert as_json("tasks", "show", task_id)["status"] == "PENDING"
    listed = as_json("tasks", "list", "--state", "pending", "--actor", "slow", "--limit", "50")
    assert task_id in {row["task_id"] for row in listed}
    queues = {q["name"]: q for q in as_json("status")["queues"]}
    assert queues["default"]["ready"] >= 1
    assert "default" in gaveurs("status")
    assert as_json("tasks", "cancel", task_id)["previous_state"] == "PENDING"
    assert as_json("tasks", "show", task_id)["status"] == "REVOKED"
    assert "already REVOKED" in gaveurs("tasks", "cancel", task_id, code=1)


def test_parameters_are_typed_by_the_job_payload(empty_default: redis.Redis) -> None:
    # A text field given digits stays text (a uuid's hex can be all digits); a number is a number
    sent = as_json("enqueue", "slow", "-p", "key=1234", "-p", "seconds=0.5")
    record = records().get(sent["task_id"])
    assert record is not None and record.args == {"key": "1234", "seconds": 0.5}


def test_bad_input_gets_a_clear_message(empty_default: redis.Redis) -> None:
    assert "unknown job 'nope'" in gaveurs("enqueue", "nope", code=1)
    assert "invalid payload for slow" in gaveurs("enqueue", "slow", "-p", "key=x", code=1)
    assert "unknown task_id" in gaveurs("tasks", "show", "no-such-id", code=1)
    assert "unknown queue 'nope'" in gaveurs("purge", "nope", "--yes", code=1)
    assert "unknown state" in gaveurs("tasks", "list", "--state", "DONE", code=1)


def test_purge_asks_drops_waiting_jobs_and_frees_their_uniqueness(
    empty_default: redis.Redis,
) -> None:
    key = uuid.uuid4().hex[:10]
    first = jobs.unique_slow.submit(jobs.Slow(key=key, seconds=1)).task_id
    others = [jobs.slow.send(jobs.Slow(key=f"{key}{i}", seconds=1)).message_id for i in range(2)]
    # Answering no keeps everything
    assert "Aborted" in gaveurs("purge", "default", stdin="n\n", code=1)
    assert empty_default.llen("dramatiq:default") == 3
    # Answering yes drops the three waiting jobs; their records say why
    assert "dropped 3 ready" in gaveurs("purge", "default", stdin="y\n")
    for task_id in (first, *others):
        record = records().get(task_id)
        assert record is not None and record.state is State.REVOKED
        assert record.failure_reason == "purged by an operator"
    # and the unique job can be submitted again at once.
    again = jobs.unique_slow.submit(jobs.Slow(key=key, seconds=1))
    assert not again.duplicate and again.task_id != first


def test_wait_follows_a_job_and_dead_letters_round_trip(
    empty_default: redis.Redis, demo_database: str
) -> None:
    worker = WorkerProcess(empty_default)
    try:
        # enqueue --wait follows the job to SUCCESS and exits 0
        key = uuid.uuid4().hex[:10]
        done = as_json("enqueue", "slow", "-p", f"key={key}", "-p", "seconds=0.5", "--wait")
        assert done["status"] == "SUCCESS" and done["progress"] == 100
        # a permanently failing job exits 1 and lands in the dead letters
        bad = uuid.uuid4().hex[:10]
        failed = as_json("enqueue", "broken", "-p", f"key={bad}", "--wait", code=1)
        assert failed["status"] == "FAILURE"
        listed = as_json("dead-letters", "list", "default")
        assert failed["task_id"] in {row["task_id"] for row in listed["dead_letters"]}
        # fixed, re-driven, it succeeds under the same task_id
        empty_default.set(f"{jobs.PREFIX}fixed:{bad}", 1)
        assert as_json("dead-letters", "requeue", "default", failed["task_id"])["requeued"] == 1
        wait_for(
            lambda: (r := records().get(failed["task_id"])) and r.state is State.SUCCESS,
            what="re-driven job",
        )
        # deleting every dead letter asks first (or takes --yes)
        other = as_json("enqueue", "broken", "-p", f"key={uuid.uuid4().hex[:10]}", "--wait", code=1)
        assert other["status"] == "FAILURE"
        assert as_json("dead-letters", "delete", "default", "--all", "--yes")["deleted"] >= 1
        assert as_json("dead-letters", "list", "default")["total"] == 0
    finally:
        worker.stop()
