"""The hot enqueue routes' fast path (api/fast_enqueue.py): the same guards and answers as
FastAPI's, through the real app (TestClient) on the real test Redis and database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.routing import Match

from api.fast_enqueue import FastEnqueue, fast_routes
from api.routers import jobs, notifications

EMAIL = "/api/tasks/notifications/email"
BODY = {"to_email": "chef@example.org", "subject": "Lot 3472", "body_html": "<p>prêt</p>"}


def test_only_routes_whose_inputs_are_a_body_model_and_the_writer_token_qualify(
    api_client: Any,
) -> None:
    # The app answers them through the fast path, innermost of its middleware
    innermost = api_client.app.user_middleware[-1]
    assert innermost.cls is FastEnqueue
    chosen = innermost.kwargs["routes"]
    assert chosen.keys() == fast_routes([*notifications.router.routes, *jobs.router.routes]).keys()
    assert sorted(chosen) == [
        "/api/jobs/{name}",
        "/api/tasks/notifications/anomaly-alert",
        "/api/tasks/notifications/bulk-email",
        EMAIL,
        "/api/tasks/notifications/sms",
    ]
    # Routes without a body (lot_id, day, feedback_id in the query) stay with FastAPI
    assert "/api/tasks/notifications/lot-completion" not in chosen


def test_the_generic_enqueue_is_the_route_fastapi_would_choose(api_client: Any) -> None:
    # The fast path matches /api/jobs/{name} by its own pattern: no route before it in the app
    # may answer such a POST, or the fast path would take that route's requests
    scope = {"type": "http", "method": "POST", "path": "/api/jobs/send_email", "root_path": ""}
    matching = [r for r in api_client.app.routes if r.matches(scope)[0] != Match.NONE]
    # FastAPI 0.165 lists each included router as one route (its original_router)
    assert [getattr(r, "original_router", r) for r in matching] == [jobs.router]


def test_the_generic_enqueue_validates_its_parameters_as_fastapi_does(api_client: Any) -> None:
    fast = FastEnqueue(api_client.app, routes=fast_routes(jobs.router.routes))

    def arguments(path: str, query: bytes, body: Any) -> dict[str, Any] | None:
        scope = {"type": "http", "method": "POST", "path": path, "query_string": query}
        route = fast.match(scope)
        assert route is not None
        return asyncio.run(route.arguments(scope, body))

    assert arguments("/api/jobs/send_email", b"delay_ms=5&priority_class=high", {"a": 1}) == {
        "name": "send_email",
        "delay_ms": 5,
        "priority_class": "high",
        "payload": {"a": 1},
    }
    # Anything FastAPI refuses is left to it (its 422): a negative delay, a list for the body
    assert arguments("/api/jobs/send_email", b"delay_ms=-1", {}) is None
    assert arguments("/api/jobs/send_email", b"delay_ms=soon", {}) is None
    assert arguments("/api/jobs/send_email", b"", [1]) is None
    assert fast.match({"type": "http", "method": "POST", "path": "/api/jobs/a/b"}) is None


def test_the_generic_enqueue_answers_as_before(api_client: Any, auth: dict[str, str]) -> None:
    email = BODY
    # Accepted, with its delay and priority class, and readable at its status URL
    accepted = api_client.post("/api/jobs/send_email?delay_ms=60000", json=email, headers=auth)
    assert accepted.status_code == 202, accepted.text
    status = api_client.get(accepted.json()["status_url"]).json()
    assert status["status"] == "PENDING" and status["eta"] is not None
    # FastAPI's 422s for parameters, the endpoint's own errors through the app's handlers
    bad_delay = api_client.post("/api/jobs/send_email?delay_ms=-1", json=email, headers=auth)
    assert bad_delay.status_code == 422 and bad_delay.json()["detail"][0]["loc"] == [
        "query",
        "delay_ms",
    ]
    too_long = api_client.post(f"/api/jobs/{'x' * 300}", json={}, headers=auth)
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"][0] == "path"
    unknown = api_client.post("/api/jobs/os_system", json={}, headers=auth)
    assert unknown.status_code == 404 and "registered jobs" in unknown.json()["detail"]
    invalid = api_client.post("/api/jobs/send_email", json={"to_email": 3}, headers=auth)
    assert invalid.status_code == 422, invalid.text
    assert api_client.post("/api/jobs/send_email", json=email).status_code == 401
    metrics = api_client.get("/metrics/").text
    assert 'method="POST",route="/api/jobs/{name}"' in metrics


def test_an_enqueue_is_answered_and_its_task_is_pending(
    api_client: Any, auth: dict[str, str]
) -> None:
    answer = api_client.post(EMAIL, json=BODY, headers=auth)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert answer.headers["Location"] == body["status_url"]
    assert body["task_name"] == "send_email" and body["to_email"] == "c***@example.org"
    status = api_client.get(body["status_url"]).json()
    assert status["status"] == "PENDING" and status["client"] == "api-token"


def test_refusals_are_fastapis_own_answers(api_client: Any, auth: dict[str, str]) -> None:
    # No token, a wrong token: 401 with WWW-Authenticate, as every write route answers
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        refused = api_client.post(EMAIL, json=BODY, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    # A body the model refuses: FastAPI's 422 with the field's location
    missing = api_client.post(EMAIL, json={"to_email": "a@b.fr"}, headers=auth)
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "subject"),
        ("body", "body_html"),
    }
    extra = api_client.post(EMAIL, json={**BODY, "cc": "x@y.fr"}, headers=auth)
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "cc"]
    not_an_object = api_client.post(EMAIL, json=[1, 2], headers=auth)
    assert not_an_object.status_code == 422


def test_an_error_of_the_endpoint_goes_through_the_apps_handlers(
    api_client: Any, auth: dict[str, str]
) -> None:
    # An SMS number that parses as no phone number: the domain's InvalidInput, the app's 422
    sms = {"phone": "+33 0000", "message": "Lot prêt"}
    refused = api_client.post("/api/tasks/notifications/sms", json=sms, headers=auth)
    assert refused.status_code == 422, refused.text
    assert isinstance(refused.json()["detail"], str)


def test_a_revoked_client_is_refused_on_the_very_next_enqueue(
    api_client: Any, auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    # Given a named client that enqueued through the fast path (its token now cached)
    name = f"mailer-{uuid.uuid4().hex[:8]}"
    created = api_client.post(
        "/api/clients", json={"name": name, "scopes": ["jobs:write"]}, headers=admin_auth
    )
    mine = {"Authorization": f"Bearer {created.json()['token']}"}
    accepted = api_client.post(EMAIL, json=BODY, headers=mine)
    assert accepted.status_code == 202
    assert api_client.get(accepted.json()["status_url"]).json()["client"] == name
    # When the admin revokes it, the next enqueue is a 401 and nothing more is queued
    assert api_client.delete(f"/api/clients/{name}", headers=admin_auth).status_code == 200
    refused = api_client.post(EMAIL, json=BODY, headers=mine)
    assert refused.status_code == 401, refused.text
    # and a client without jobs:write is a 403 naming the scope
    reader = f"reader-{uuid.uuid4().hex[:8]}"
    token = api_client.post(
        "/api/clients", json={"name": reader, "scopes": ["exports:read"]}, headers=admin_auth
    ).json()["token"]
    forbidden = api_client.post(EMAIL, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert forbidden.status_code == 403 and "jobs:write" in forbidden.json()["detail"]


def test_requests_are_counted_under_their_route(api_client: Any, auth: dict[str, str]) -> None:
    api_client.post(EMAIL, json=BODY, headers=auth)
    metrics = api_client.get("/metrics/").text
    assert f'method="POST",route="{EMAIL}"' in metrics
