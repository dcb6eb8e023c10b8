"""JOURNAL_ENABLED=false: the API and the workers start and run jobs, and nothing is journaled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis

from domain.platform.settings import get_settings
from runtime import State, records
from tests.support.api import ApiProcess
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def test_the_journal_can_be_switched_off(
    redis_server: redis.Redis, clean_redis: redis.Redis, demo_database: str, tmp_path: Path
) -> None:
    off = {"JOURNAL_ENABLED": "false", "AGGREGATES_DEBOUNCE_MS": "50"}
    # Given the API (the Procfile's web process) and a worker, both with the journal off
    api = ApiProcess(off, log=tmp_path / "api.log")
    worker = WorkerProcess(clean_redis, module="actors", env=off)
    try:
        # When a job is submitted through the API,
        answer = api.post("/api/tasks/maintenance/refresh-aggregates")
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        # then it runs to SUCCESS
        wait_for(
            lambda: (r := records().get(task_id)) and r.state is State.SUCCESS,
            timeout=60,
            what="the job's success",
        )
    finally:
        worker.stop()
        api.stop()
    # and neither process wrote it to the journal.
    path = get_settings().database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT count(*) FROM job_journal WHERE task_id = ?", (task_id,))
        assert rows.fetchone() == (0,)
