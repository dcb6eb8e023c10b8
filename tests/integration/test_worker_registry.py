"""The worker registry the heartbeat keeps (runtime/middleware/heartbeat.py), with real worker
processes: what each did (processed, failed, RSS), and which went away in the last hour and how."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from ops.local_redis import RedisServer
from runtime import gone_workers, live_workers
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def _entry(client: redis.Redis, pid: int) -> dict[str, object] | None:
    return next((w for w in live_workers(client) if w["pid"] == pid), None)


def _started(client: redis.Redis) -> tuple[WorkerProcess, int]:
    """A worker on `default`, and the pid its heartbeat reports (Dramatiq's child process)."""
    before = {w["pid"] for w in live_workers(client)}
    worker = WorkerProcess(client, queues=("default",), threads=1)
    (pid,) = {w["pid"] for w in live_workers(client)} - before
    return worker, pid


def test_a_worker_reports_its_counts_and_rss_then_is_listed_as_stopped(
    redis_server: RedisServer, demo_database: str
) -> None:
    client = redis_server.client
    # Given a worker that runs a job failing once (one retry) then succeeding
    worker, pid = _started(client)
    try:
        jobs.flaky.send(jobs.Flaky(key=uuid.uuid4().hex, failures=1))

        # Then its heartbeat reports two attempts on `default`, one failed, and its RSS
        def counted() -> dict[str, object] | None:
            entry = _entry(client, pid)
            return entry if entry and entry["processed"] == {"default": 2} else None

        entry = wait_for(counted, timeout=30, what="the worker's counts")
        assert entry["failed"] == {"default": 1}
        assert 20 < float(entry["rss_mb"]) < 2_000  # type: ignore[arg-type]
    finally:
        worker.stop()
    # When it stops cleanly, it is no longer alive but listed as stopped, with its last counts
    assert _entry(client, pid) is None
    gone = {w["pid"]: w for w in gone_workers(client)}
    assert gone[pid]["gone"] == "stopped" and gone[pid]["stopped_at"]
    assert gone[pid]["processed"] == {"default": 2}


def test_a_killed_worker_is_listed_as_silent(redis_server: RedisServer, demo_database: str) -> None:
    client = redis_server.client
    # Given a worker killed with SIGKILL (no shutdown hook runs)
    worker, pid = _started(client)
    worker.kill()
    # Then, once its heartbeat is older than the alive window (2 s here), it is listed as silent
    found = wait_for(
        lambda: [w for w in gone_workers(client, window_s=2) if w["pid"] == pid],
        timeout=20,
        what="the killed worker among the gone",
    )
    assert found[0]["gone"] == "silent"
    assert "stopped_at" not in found[0]


def test_a_worker_beats_well_within_its_heartbeat_timeout(
    redis_server: RedisServer, demo_database: str
) -> None:
    client = redis_server.client
    # Given a worker whose broker takes a process silent for 1.5 s for dead
    before = {w["pid"] for w in live_workers(client)}
    worker = WorkerProcess(
        client, queues=("default",), threads=1, env={"WORKER_HEARTBEAT_TIMEOUT_MS": "1500"}
    )
    try:
        (pid,) = {w["pid"] for w in live_workers(client)} - before
        # When its beats are watched for a few seconds
        beats: list[int] = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            entry = _entry(client, pid)
            if entry and (not beats or entry["last_seen"] != beats[-1]):
                beats.append(int(entry["last_seen"]))  # type: ignore[call-overload]
            time.sleep(0.05)
    finally:
        worker.stop()
    # Then it beats several times, never leaving a gap a third of the timeout wide: a busy worker
    # whose consumers do not fetch is not taken for dead and its jobs re-queued under it
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
    assert len(gaps) >= 4, beats
    assert max(gaps) <= 700, gaps
