"""ops.worker: the Procfile's launcher, and worker recycling through real worker processes."""

from __future__ import annotations

import logging
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import ops.worker
from ops.local_redis import RedisServer
from runtime import RECYCLE_EXIT_CODE, State, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow

LEAK_MB = 50
LIMIT_MB = 200


@pytest.fixture()
def leaks(redis_server: RedisServer, demo_database: str) -> Iterator[None]:
    redis_server.client.delete(f"{jobs.PREFIX}leaky")
    yield
    redis_server.client.delete(f"{jobs.PREFIX}leaky")


def _recycles(port: int) -> float:
    """gaveurs_worker_recycles_total{reason="memory"} as the worker's metrics port serves it."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("gaveurs_worker_recycles_total{") and 'reason="memory"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _all_done(task_ids: list[str]) -> bool:
    found = records().get_many(task_ids)
    return len(found) == len(task_ids) and all(r.state is State.SUCCESS for r in found)


def test_launcher_and_runtime_agree_on_the_recycle_exit_code() -> None:
    assert ops.worker.RECYCLE_EXIT_CODE == RECYCLE_EXIT_CODE


def test_the_main_process_log_tells_a_recycling_from_a_crash_and_sees_stops() -> None:
    seen = ops.worker.MainProcessLog()
    line = "Worker with PID %r exited unexpectedly (code %r). Shutting down..."
    crash = logging.LogRecord("dramatiq.MainProcess", logging.CRITICAL, "", 0, line, (7, 1), None)
    recycled = logging.LogRecord(
        "dramatiq.MainProcess", logging.CRITICAL, "", 0, line, (7, RECYCLE_EXIT_CODE), None
    )
    assert seen.filter(crash) and crash.levelno == logging.CRITICAL
    assert seen.filter(recycled) and recycled.levelno == logging.INFO
    assert "recycled" in recycled.getMessage() and not seen.stop_signalled
    stop = "Sending signal %r to subprocesses..."
    seen.filter(logging.LogRecord("", logging.INFO, "", 0, stop, ("SIGTERM",), None))
    assert seen.stop_signalled


def test_negative_limits_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = ops.worker.main(["--queues", "default", "--metrics-port", "1", "--max-memory-mb", "-1"])
    assert code == 2 and ">= 0" in capsys.readouterr().err


def test_leaking_worker_is_replaced_and_every_job_succeeds_once(
    redis_server: RedisServer, leaks: None
) -> None:
    # Given a launcher whose worker processes may grow to 200 MB, one job at a time
    client = redis_server.client
    worker = WorkerProcess(client, threads=1, launcher_options=("--max-memory-mb", str(LIMIT_MB)))
    try:
        # When 30 jobs that each keep 50 MB alive run through it
        keys = [uuid.uuid4().hex[:12] for _ in range(30)]
        ids = [jobs.leaky.send(jobs.Leak(key=k, mb=LEAK_MB)).message_id for k in keys]
        wait_for(lambda: _all_done(ids), timeout=240, interval=0.5, what="30 leaky jobs")
        assert worker.alive
        recycles = wait_for(lambda: _recycles(worker.metrics_port), what="the recycle counter")
    finally:
        worker.stop()

    # Then each job ran exactly once
    counts = [int(client.get(f"{jobs.PREFIX}count:{k}") or 0) for k in keys]
    assert counts == [1] * 30
    # and processes were replaced before any grew past the limit plus one job's leak
    runs = [line.decode().split() for line in client.lrange(f"{jobs.PREFIX}leaky", 0, -1)]
    pids = {pid for pid, _ in runs}
    peak = max(float(rss) for _, rss in runs)
    assert len(runs) == 30
    assert len(pids) >= 30 * LEAK_MB // LIMIT_MB, pids
    assert peak < LIMIT_MB + LEAK_MB, peak
    # and each replacement was counted (the last process may not have reached the limit)
    assert len(pids) - 1 <= recycles <= len(pids), (recycles, len(pids))


def test_worker_is_replaced_after_its_job_count(redis_server: RedisServer, leaks: None) -> None:
    # Given a launcher whose processes run at most 4 jobs each, two at a time
    client = redis_server.client
    worker = WorkerProcess(client, threads=2, launcher_options=("--max-jobs-per-process", "4"))
    try:
        # When 8 small jobs run
        keys = [uuid.uuid4().hex[:12] for _ in range(8)]
        ids = [jobs.leaky.send(jobs.Leak(key=k, mb=1)).message_id for k in keys]
        wait_for(lambda: _all_done(ids), timeout=120, interval=0.2, what="8 jobs")
    finally:
        worker.stop()
    # (the launcher's metrics directory went with it)
    prom_dir = Path(tempfile.gettempdir()) / f"gaveurs-prom-{worker.metrics_port}"
    assert not prom_dir.exists()

    # Then no process ran more than 4 (+1 started by its other thread meanwhile), none twice
    runs = [line.decode().split()[0] for line in client.lrange(f"{jobs.PREFIX}leaky", 0, -1)]
    assert [int(client.get(f"{jobs.PREFIX}count:{k}") or 0) for k in keys] == [1] * 8
    per_process = {pid: runs.count(pid) for pid in set(runs)}
    assert len(per_process) >= 2 and max(per_process.values()) <= 5, per_process
