"""The HTTP contract: shapes of seed 001, auth, errors, reference data, dashboard."""

from __future__ import annotations

import base64
import os
from typing import Any

from tests.conftest import ADMIN_TOKEN


def test_enqueue_needs_a_bearer_token(api_client: Any) -> None:
    response = api_client.post("/api/tasks/maintenance/health-check")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    wrong = api_client.post(
        "/api/tasks/maintenance/health-check", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401


def test_enqueue_answers_202_with_task_id_and_status_url(
    api_client: Any, auth: dict[str, str]
) -> None:
    response = api_client.post("/api/tasks/maintenance/refresh-aggregates?full=true", headers=auth)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "submitted" and body["full"] is True
    assert (
        response.headers["Location"] == body["status_url"] == f"/api/tasks/status/{body['task_id']}"
    )
    record = api_client.get(body["status_url"]).json()
    assert record["task_name"] == "refresh_aggregates" and record["status"] in {
        "PENDING",
        "STARTED",
        "SUCCESS",
    }
    assert api_client.get(f"/api/tasks/{body['task_id']}").json()["task_id"] == body["task_id"]


def test_unknown_task_is_404_with_a_message(api_client: Any) -> None:
    response = api_client.get("/api/tasks/status/does-not-exist")
    assert response.status_code == 404
    assert "unknown task_id" in response.json()["detail"]


def test_listing_routes_have_the_documented_shape(api_client: Any, auth: dict[str, str]) -> None:
    api_client.post("/api/tasks/maintenance/health-check", headers=auth)
    active = api_client.get("/api/tasks/list/active?limit=10").json()
    assert set(active) == {"total", "tasks"}
    listed = api_client.get("/api/tasks?actor=health_check&limit=5").json()
    assert listed["tasks"] and all(t["task_name"] == "health_check" for t in listed["tasks"])
    assert api_client.get("/api/tasks?queue=nope").status_code == 422
    assert api_client.get("/api/tasks?state=BOGUS").status_code == 422

    stats = api_client.get("/api/tasks/stats").json()
    for field in (
        "workers",
        "nb_workers",
        "tasks_active",
        "tasks_scheduled",
        "tasks_reserved",
        "total_pending",
        "worker_stats",
        "queues",
    ):
        assert field in stats
    assert set(stats["queues"]) == {
        "ml_heavy",
        "ml_light",
        "exports",
        "notifications",
        "notifications_urgent",
        "default",
    }
    queues = api_client.get("/api/queues").json()
    assert {q["name"] for q in queues} == set(stats["queues"])


def test_destructive_routes_need_the_admin_token(api_client: Any, auth: dict[str, str]) -> None:
    assert api_client.delete("/api/queues/default/dead-letters", headers=auth).status_code == 403
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert api_client.delete("/api/queues/default/dead-letters", headers=admin).status_code == 200
    assert api_client.get("/api/queues/nope/dead-letters").status_code == 404


def test_reference_data_is_paged(api_client: Any) -> None:
    sites = api_client.get("/api/sites").json()
    assert {s["code"] for s in sites["sites"]} == {"LL", "LS", "MT"}
    page = api_client.get("/api/lots?limit=5&offset=5").json()
    assert page["total"] >= 10 and len(page["lots"]) == 5 and page["offset"] == 5
    lot_id = page["lots"][0]["id"]
    assert api_client.get(f"/api/lots/{lot_id}").json()["id"] == lot_id
    assert api_client.get("/api/lots/99999999").status_code == 404


def test_health_probes_and_metrics_and_docs(api_client: Any) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok"}
    ready = api_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "database": "ok"}
    assert "gaveurs_api_enqueued_total" in api_client.get("/metrics/").text
    assert "/api/tasks/status/{task_id}" in api_client.get("/openapi.json").json()["paths"]


def test_oversized_body_is_rejected_with_413(api_client: Any, auth: dict[str, str]) -> None:
    big = b"x" * (int(os.environ.get("MAX_REQUEST_BODY_BYTES", 1_000_000)) + 1)
    response = api_client.post("/api/tasks/maintenance/health-check", content=big, headers=auth)
    assert response.status_code == 413


def test_dashboard_renders_against_real_redis_behind_admin_credentials(api_client: Any) -> None:
    assert api_client.get("/dashboard/").status_code == 401
    bad = base64.b64encode(b"admin:wrong").decode()
    assert (
        api_client.get("/dashboard/", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    )
    good = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()}
    home = api_client.get("/dashboard/", headers=good)
    assert home.status_code == 200 and "default" in home.text
    for tab in ("standard", "delayed", "failed"):
        page = api_client.get(f"/dashboard/queues/default/{tab}", headers=good)
        assert page.status_code == 200, page.text[:300]


def test_metrics_count_errors_and_latency_by_route_template(
    api_client: Any, auth: dict[str, str]
) -> None:
    # Given a 404 on a templated route, a 401 and a successful enqueue
    api_client.get("/api/tasks/status/no-such-task")
    api_client.post("/api/tasks/maintenance/health-check")
    api_client.post("/api/tasks/maintenance/refresh-aggregates", headers=auth)
    text = api_client.get("/metrics/").text
    # Then errors are counted by route template and status, latency by route template
    assert 'gaveurs_api_http_errors_total{route="/api/tasks/status/{task_id}",status="404"}' in text
    assert (
        'gaveurs_api_http_errors_total{route="/api/tasks/maintenance/health-check",status="401"}'
        in text
    )
    assert (
        'gaveurs_api_request_duration_seconds_count{method="POST",'
        'route="/api/tasks/maintenance/refresh-aggregates"}' in text
    )
    assert 'gaveurs_api_enqueue_duration_seconds_count{actor="refresh_aggregates"}' in text
    assert "no-such-task" not in text
