"""The async enqueue path (runtime/async_enqueue.py, the notification routes) against a real API
process and a real redis-server that stops answering (SIGSTOP): the event loop keeps serving,
each enqueue waits at most API_ENQUEUE_TIMEOUT_S, and the answer is a 503 with Retry-After
(deferral off) or a deferred job sent exactly once when Redis is back (deferral on)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.bench.env import api_server
from ops.local_redis import RedisServer
from tests.conftest import API_TOKEN

EMAIL = "/api/tasks/notifications/email"
BODY = {"to_email": "chef@example.org", "subject": "Lot 3472", "body_html": "<p>prêt</p>"}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TIMEOUT_S = 0.5


@pytest.fixture()
def redis_alone() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.resume()
        server.stop()


@contextmanager
def api(redis_url: str, log_dir: Path, **env: str) -> Iterator[str]:
    """The API as the Procfile starts it, on `redis_url`, with a short enqueue timeout."""
    settings = {"REDIS_URL": redis_url, "API_ENQUEUE_TIMEOUT_S": str(TIMEOUT_S), **env}
    with api_server(log_dir=log_dir, env=settings) as server:
        yield server.url


async def _during_stall(base: str, posts: int) -> tuple[list[httpx.Response], float, float]:
    """`posts` enqueues at once, and a liveness probe while they wait on the stalled Redis."""
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
        started = time.monotonic()
        waiting = [asyncio.create_task(client.post(EMAIL, json=BODY)) for _ in range(posts)]
        await asyncio.sleep(TIMEOUT_S / 5)
        probe_started = time.monotonic()
        assert (await client.get("/healthz")).status_code == 200
        probe_s = time.monotonic() - probe_started
        answers = await asyncio.gather(*waiting)
        return answers, probe_s, time.monotonic() - started


def _statuses(answers: list[httpx.Response]) -> list[int]:
    return [answer.status_code for answer in answers]


def test_a_stalled_redis_gets_503s_after_the_timeout_and_the_loop_keeps_serving(
    demo_database: str, redis_alone: RedisServer, tmp_path: Path
) -> None:
    with api(redis_alone.url, tmp_path, DEFERRED_MAX_JOBS="0") as base:
        # Given an API whose async enqueue works (its connection to Redis is open)
        first = httpx.post(base + EMAIL, json=BODY, headers=AUTH)
        assert first.status_code == 202
        # When Redis stops answering and 8 enqueues arrive at once
        redis_alone.pause()
        answers, probe_s, elapsed = asyncio.run(_during_stall(base, posts=8))
        # (and a client polls its task's status: read on the loop too, a 503 after the timeout)
        started = time.monotonic()
        polled = httpx.get(base + first.json()["status_url"], timeout=30)
        polled_s = time.monotonic() - started
        redis_alone.resume()
        assert polled.status_code == 503, polled.text
        assert TIMEOUT_S <= polled_s < 4 * TIMEOUT_S, polled_s
        # Then the process answered a probe meanwhile, and every enqueue got its 503 after
        # about the timeout, all together (not one after the other)
        assert probe_s < TIMEOUT_S, probe_s
        assert _statuses(answers) == [503] * 8
        assert all(answer.headers["Retry-After"] == "5" for answer in answers)
        assert "Redis" in answers[0].json()["detail"]
        assert TIMEOUT_S <= elapsed < 8 * TIMEOUT_S, elapsed
        # And once Redis answers again, so do enqueues
        accepted = httpx.post(base + EMAIL, json=BODY, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        record: dict[Any, Any] = redis_alone.client.hgetall(
            f"gaveurs:jobs:job:{accepted.json()['task_id']}"
        )
        assert record[b"state"] == b"PENDING" and record[b"task_name"] == b"send_email"


def test_a_job_deferred_in_a_stall_is_sent_once_when_redis_answers(
    demo_database: str, redis_alone: RedisServer, tmp_path: Path
) -> None:
    client = redis_alone.client
    with api(redis_alone.url, tmp_path) as base:
        assert httpx.post(base + EMAIL, json=BODY, headers=AUTH).status_code == 202
        # Given a Redis that stops answering while a job is being enqueued
        redis_alone.pause()
        answers, probe_s, _ = asyncio.run(_during_stall(base, posts=1))
        # Then the job is accepted, deferred to the journal, and the loop kept serving
        (answer,) = answers
        assert answer.status_code == 202, answer.text
        assert answer.json()["queued"] == "deferred"
        assert probe_s < TIMEOUT_S, probe_s
        task_id = answer.json()["task_id"]
        # When Redis answers again: the enqueue it held runs, and the forwarder finds its record
        redis_alone.resume()
        deadline = time.monotonic() + 30
        while not _forwarded(task_id):
            assert time.monotonic() < deadline, "the deferred job was never forwarded"
            time.sleep(0.1)
        # Then the job is in Redis once: its record, and beside the first job's message one
        # message, its own (not a second copy under another id)
        assert client.hget(f"gaveurs:jobs:job:{task_id}", "state") == b"PENDING"
        bodies = client.hvals("dramatiq:notifications.msgs")
        assert len(bodies) == client.llen("dramatiq:notifications") == 2
        assert sum(task_id.encode() in body for body in bodies) == 1
        status = httpx.get(f"{base}/api/tasks/status/{task_id}", headers=AUTH).json()
        assert status["status"] == "PENDING"


def _forwarded(task_id: str) -> bool:
    """The forwarder's pass is over: the journal entry is marked (sent, or found in Redis)."""
    from domain.platform import deferred
    from domain.platform.db import make_engine

    entry = deferred.lookup(make_engine(os.environ["DATABASE_URL"]), task_id)
    return entry is not None and entry.forwarded_at is not None
