"""Result callbacks end to end: a real API process takes `callback_url`, a real worker runs the
job and then `deliver_callback` on `notifications`, a real HTTP server receives (or refuses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from domain.notify import callbacks
from runtime import JobRecord, State, records
from tests.support.api import ApiProcess
from tests.support.callbacks import Receiver
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
SECRET = "per-client-callback-secret"


@pytest.fixture()
def platform(clean_redis: redis.Redis, demo_database: str, tmp_path: Path) -> Iterator[ApiProcess]:
    env = {
        "CALLBACK_SECRET": SECRET,
        "CALLBACK_ALLOW_PRIVATE": "true",  # the receiver listens on loopback
        "CALLBACK_MIN_BACKOFF_MS": "200",
        "CALLBACK_MAX_RETRIES": "2",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    api = ApiProcess(env, log=tmp_path / "api.log")
    worker = WorkerProcess(
        clean_redis, module="actors", queues=("default", "notifications"), env=env
    )
    yield api
    worker.stop()
    api.stop()
    clean_redis.delete("dramatiq:notifications", "dramatiq:notifications.XQ")


def _email(api: ApiProcess, callback_url: str) -> str:
    response = api.post(
        "/api/tasks/notifications/email",
        params={"callback_url": callback_url},
        json={"to_email": "gaveur@example.org", "subject": "Lot 3472", "body_html": "<p>ok</p>"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def test_the_final_record_is_posted_signed_once_after_the_receiver_recovers(
    platform: ApiProcess,
) -> None:
    # Given a receiver that fails twice before it takes the callback
    receiver = Receiver(statuses=(503, 503))
    try:
        # When a job is submitted with a callback_url and runs
        task_id = _email(platform, receiver.url)
        wait_for(lambda: any(r.answered == 200 for r in receiver.received), timeout=60, what="200")
        # Then the record, signed, reached the receiver once, after two retried failures
        assert [r.answered for r in receiver.received] == [503, 503, 200]
        final = receiver.received[-1]
        assert callbacks.verify(SECRET, final.body, final.headers["X-Gaveurs-Signature"])
        assert final.headers["X-Gaveurs-Delivery"] == task_id
        data = json.loads(final.body)
        assert data["task_id"] == task_id and data["status"] == "SUCCESS"

        def deliveries() -> list[JobRecord]:
            found = records().list(actor="deliver_callback", limit=50)
            return [r for r in found if task_id in str(r.args)]

        wait_for(lambda: deliveries()[0].state == State.SUCCESS, timeout=10, what="its end")
        assert len(deliveries()) == 1
        assert "127.0.0.1" not in str(deliveries()[0].args)  # the URL is redacted in the record
    finally:
        receiver.stop()


def test_a_receiver_that_keeps_failing_gets_its_callback_dead_lettered(
    platform: ApiProcess, clean_redis: redis.Redis
) -> None:
    receiver = Receiver(always=500)
    try:
        _email(platform, receiver.url)
        # Three attempts (two retries), then the dead letters of `notifications`
        wait_for(
            lambda: clean_redis.zcard("dramatiq:notifications.XQ") == 1,
            timeout=60,
            what="the callback's dead letter",
        )
        assert len(receiver.received) == 3
    finally:
        receiver.stop()


def test_a_loopback_callback_url_is_refused_unless_configured(
    clean_redis: redis.Redis, demo_database: str, tmp_path: Path
) -> None:
    api = ApiProcess({"CALLBACK_SECRET": SECRET}, log=tmp_path / "api.log")
    try:
        response = api.post(
            "/api/tasks/maintenance/health-check",
            params={"callback_url": "http://127.0.0.1:9/steal"},
        )
        assert response.status_code == 422 and "CALLBACK_ALLOW_PRIVATE" in response.text
    finally:
        api.stop()
