"""The generic job routes, the Idempotency-Key header and the write rate limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from domain.platform.settings import Settings


def test_registered_jobs_are_listed_with_their_payload_schema(api_client: Any) -> None:
    jobs = {job["name"]: job for job in api_client.get("/api/jobs").json()["jobs"]}
    assert {"health_check", "train_pysr", "send_sms", "generate_lot_pdf_report"} <= set(jobs)
    assert jobs["train_pysr"]["queue"] == "ml_heavy"
    assert "lot_id" in jobs["train_pysr"]["payload_schema"]["properties"]


def test_only_registered_jobs_can_be_enqueued(api_client: Any, auth: dict[str, str]) -> None:
    unknown = api_client.post("/api/jobs/os_system", json={}, headers=auth)
    assert unknown.status_code == 404 and "health_check" in unknown.json()["detail"]
    invalid = api_client.post("/api/jobs/refresh_aggregates", json={"full": "x"}, headers=auth)
    assert invalid.status_code == 422
    extra = api_client.post("/api/jobs/health_check", json={"rm": "-rf"}, headers=auth)
    assert extra.status_code == 422 and "Extra inputs" in extra.json()["detail"]
    assert api_client.post("/api/jobs/health_check", json={}).status_code == 401


def test_a_registered_job_is_enqueued_with_an_optional_delay(
    api_client: Any, auth: dict[str, str]
) -> None:
    email = {"to_email": "delay@example.org", "subject": "Later", "body_html": "<p>later</p>"}
    response = api_client.post("/api/jobs/send_email?delay_ms=60000", json=email, headers=auth)
    assert response.status_code == 202 and not response.json()["duplicate"], response.text
    record = api_client.get(response.json()["status_url"]).json()
    assert record["task_name"] == "send_email" and record["eta"] is not None
    api_client.delete(f"/api/tasks/cancel/{response.json()['task_id']}", headers=auth)


def test_a_retry_with_the_same_idempotency_key_returns_the_first_job(
    api_client: Any, auth: dict[str, str]
) -> None:
    headers = {**auth, "Idempotency-Key": f"order-{uuid.uuid4()}"}
    route = "/api/tasks/ml/clustering/run?k=4"
    first = api_client.post(route, headers=headers)
    again = api_client.post(route, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    assert not first.json()["duplicate"] and again.json()["duplicate"]
    # The same key for a different request is a client bug: refused, not silently merged.
    other = api_client.post("/api/tasks/ml/clustering/run?k=6", headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    api_client.delete(f"/api/tasks/cancel/{first.json()['task_id']}", headers=auth)


def test_an_invalid_idempotency_key_is_a_400(api_client: Any, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "x" * 300}
    response = api_client.post("/api/tasks/maintenance/health-check", headers=headers)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]


@pytest.fixture()
def limited_client(demo_database: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(enqueue_rate_per_s=3))) as client:
        yield client


def test_writes_beyond_the_rate_are_429_and_reads_are_not_limited(
    limited_client: TestClient, auth: dict[str, str]
) -> None:
    codes = [
        limited_client.post("/api/jobs/nope", json={}, headers=auth).status_code for _ in range(6)
    ]
    assert codes[:3] == [404, 404, 404] and 429 in codes[3:]
    limited = next(
        r
        for r in (limited_client.post("/api/jobs/nope", json={}, headers=auth) for _ in range(3))
        if r.status_code == 429
    )
    assert limited.headers["Retry-After"] == "1" and "per second" in limited.json()["detail"]
    assert all(limited_client.get("/api/jobs").status_code == 200 for _ in range(10))


def test_a_request_chooses_a_priority_class_within_the_jobs_range(
    api_client: Any, auth: dict[str, str]
) -> None:
    from runtime import broker

    client = broker().client
    high = "dramatiq:ml_heavy.high"
    before = set(client.lrange(high, 0, -1))
    # Given train_pysr, normal by default, which requests may raise to high
    described = api_client.get("/api/jobs/train_pysr").json()
    assert described["priority_class"] == "normal"
    assert described["priority_range"] == ["low", "high"]

    # When a request asks for "haute" (the seed's name), then for critical
    chosen = api_client.post(
        "/api/jobs/train_pysr?priority_class=haute", json={"lot_id": 3003}, headers=auth
    )
    refused = api_client.post(
        "/api/jobs/train_pysr?priority_class=critical", json={"lot_id": 3003}, headers=auth
    )

    # Then the first waits on the queue's high-class list, the second is refused with the range
    added = set(client.lrange(high, 0, -1)) - before
    api_client.delete(f"/api/tasks/cancel/{chosen.json()['task_id']}", headers=auth)
    for redis_id in added:
        client.lrem(high, 0, redis_id)
        client.hdel("dramatiq:ml_heavy.msgs", redis_id)
    assert chosen.status_code == 202, chosen.text
    assert len(added) == 1
    assert refused.status_code == 422
    assert (
        refused.json()["detail"] == "train_pysr may run at priority class low to high, not critical"
    )
