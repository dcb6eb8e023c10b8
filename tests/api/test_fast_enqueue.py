"""The hot enqueue routes' fast path (api/fast_enqueue.py): the same guards and answers as
FastAPI's, through the real app (TestClient) on the real test Redis and database."""

from __future__ import annotations

import uuid
from typing import Any

from api.fast_enqueue import FastEnqueue, fast_routes
from api.routers import notifications

EMAIL = "/api/tasks/notifications/email"
BODY = {"to_email": "chef@example.org", "subject": "Lot 3472", "body_html": "<p>prêt</p>"}


def test_only_routes_whose_inputs_are_a_body_model_and_the_writer_token_qualify(
    api_client: Any,
) -> None:
    # The app answers them through the fast path, innermost of its middleware
    innermost = api_client.app.user_middleware[-1]
    assert innermost.cls is FastEnqueue
    chosen = innermost.kwargs["routes"]
    assert chosen.keys() == fast_routes(notifications.router.routes).keys()
    assert sorted(chosen) == [
        "/api/tasks/notifications/anomaly-alert",
        "/api/tasks/notifications/bulk-email",
        EMAIL,
        "/api/tasks/notifications/sms",
    ]
    # Query parameters (lot_id, day, feedback_id) stay with FastAPI
    assert "/api/tasks/notifications/lot-completion" not in chosen


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
