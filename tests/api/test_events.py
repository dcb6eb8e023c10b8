"""Live results: `GET /api/tasks/{id}/events` from a real API process, with a real worker on the
session's Redis; and `gaveurs enqueue --wait` rides the same notices (tests/ops/test_cli.py)."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from runtime import records
from tests.support import jobs
from tests.support.api import ApiProcess
from tests.support.workers import WorkerProcess


@pytest.fixture(scope="module")
def api(
    redis_server: object, demo_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """One API process for the module (it takes seconds to start on a loaded machine)."""
    process = ApiProcess({}, log=tmp_path_factory.mktemp("events") / "api.log")
    yield process
    process.stop()


def _events(api: ApiProcess, task_id: str) -> Iterator[tuple[float, dict[str, Any]]]:
    """(arrival time, record) for each event of the stream, until the server closes it."""
    with api.client.stream("GET", f"/api/tasks/{task_id}/events", timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                yield time.time(), json.loads(line.removeprefix("data: "))


def test_a_stream_shows_progress_and_closes_at_the_final_state(
    api: ApiProcess, clean_redis: redis.Redis
) -> None:
    worker = WorkerProcess(clean_redis, threads=2)
    try:
        delays_ms: list[float] = []
        for _ in range(5):
            # Given a job that reports progress for 0.6 s
            task_id = jobs.slow.submit(jobs.Slow(key=uuid.uuid4().hex, seconds=0.6)).task_id
            # When a client follows its events
            events = list(_events(api, task_id))
            states = [record["status"] for _, record in events]
            # Then it sees it run, with progress, and the stream ends right after SUCCESS
            assert states[-1] == "SUCCESS" and "STARTED" in states, states
            assert any(0 < record["progress"] < 100 for _, record in events)
            arrived, final = events[-1]
            assert final["result"]["status"] == "success"
            completed = records().get(task_id)
            assert completed is not None and completed.completed_at is not None
            delays_ms.append(arrived * 1000 - completed.completed_at)
    finally:
        worker.stop()
    print(
        f"\n[live] SSE delivery of the final state: median {statistics.median(delays_ms):.1f} ms, "
        f"max {max(delays_ms):.1f} ms over {len(delays_ms)} jobs (shared machine)"
    )
    assert statistics.median(delays_ms) < 1000


def test_a_waiting_stream_does_not_poll_redis(api: ApiProcess, clean_redis: redis.Redis) -> None:
    # Given a job that waits 2.5 s before it may start, and no worker
    task_id = jobs.slow.submit(jobs.Slow(key=uuid.uuid4().hex, seconds=0.1), delay_ms=2500)
    reads_before = _hgetall_calls(clean_redis)
    started = time.monotonic()
    # When a client follows it for 2 s
    with api.client.stream("GET", f"/api/tasks/{task_id.task_id}/events", timeout=10) as stream:
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first.removeprefix("data: "))["status"] == "PENDING"
        time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    # Then the record was read once or twice, not every 100 ms
    assert _hgetall_calls(clean_redis) - reads_before <= 3


def test_an_unknown_task_is_a_404(api: ApiProcess) -> None:
    response = api.client.get("/api/tasks/no-such-task/events")
    assert response.status_code == 404 and "unknown task_id" in response.json()["detail"]


def _hgetall_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))
