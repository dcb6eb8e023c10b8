"""Named clients log in to the console: one holding `admin` gets a session that acts under its
name; one without is refused naming the scope; revoking (or rotating) the client ends its
session at the very next request, pages, fragments, actions and the dashboard alike."""

from __future__ import annotations

import re
import uuid
from typing import Any

from actors.exports import LotsBatch, batch_export_lots_csv
from tests.api.console.test_auth import log_in


def _client(api_client: Any, admin_auth: dict[str, str], *scopes: str) -> tuple[str, str]:
    name = f"operator-{uuid.uuid4().hex[:8]}"
    created = api_client.post(
        "/api/clients", json={"name": name, "scopes": list(scopes)}, headers=admin_auth
    )
    assert created.status_code == 201, created.text
    return name, created.json()["token"]


def _csrf(api_client: Any) -> dict[str, str]:
    page = api_client.get("/console/jobs")
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return {"X-CSRF-Token": token}


def test_an_admin_client_logs_in_acts_under_its_name_and_is_logged_out_when_revoked(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    # Given a named client with the admin scope
    name, token = _client(api_client, admin_auth, "admin")

    # When it logs in to the console with its token
    answer = log_in(api_client, token)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    page = api_client.get("/console/jobs")
    assert page.status_code == 200 and name in page.text
    assert api_client.get("/dashboard/", follow_redirects=False).status_code == 200

    # Then what it does from the console is recorded under its name (a job without
    # uniqueness, sent again: a new task)
    first = batch_export_lots_csv.submit(LotsBatch(lot_ids=[3001])).task_id
    sent = api_client.post(
        f"/console/actions/tasks/{first}/enqueue-again", headers=_csrf(api_client)
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["task_id"] != first
    status = api_client.get(f"/api/tasks/status/{sent.json()['task_id']}").json()
    assert status["client"] == name, status
    for task_id in (first, sent.json()["task_id"]):  # no export worker should meet them later
        assert api_client.delete(f"/api/tasks/cancel/{task_id}", headers=admin_auth).is_success

    # When the admin revokes the client
    headers = _csrf(api_client)
    assert api_client.delete(f"/api/clients/{name}", headers=admin_auth).status_code == 200

    # Then its session is refused at once: pages, fragments, actions and the dashboard
    assert api_client.get("/console/jobs", follow_redirects=False).status_code == 303
    assert api_client.get("/console/fragments/jobs").status_code == 401
    refused = api_client.post(
        "/console/actions/schedules/health-check-periodic/run", headers=headers
    )
    assert refused.status_code == 401
    dashboard = api_client.get("/dashboard/", follow_redirects=False)
    assert dashboard.status_code in (303, 401)
    # and the revoked token cannot log in again
    assert log_in(api_client, token).status_code == 401


def test_a_rotated_token_ends_the_session_opened_with_the_old_one(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    name, token = _client(api_client, admin_auth, "admin")
    assert log_in(api_client, token).status_code == 303
    assert api_client.get("/console/jobs").status_code == 200
    rotated = api_client.post(f"/api/clients/{name}/rotate", headers=admin_auth)
    assert rotated.status_code == 200, rotated.text
    assert api_client.get("/console/jobs", follow_redirects=False).status_code == 303
    assert log_in(api_client, rotated.json()["token"]).status_code == 303


def test_a_client_without_the_admin_scope_is_refused_naming_it(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    name, token = _client(api_client, admin_auth, "jobs:write", "audit:read")
    answer = log_in(api_client, token)
    assert answer.status_code == 403
    assert "gaveurs_console=" not in answer.headers.get("set-cookie", "")
    assert name in answer.text and "scope &#39;admin&#39;" in answer.text
    # An unknown token of the named form is just a wrong token
    assert log_in(api_client, "gvt_" + "x" * 43).status_code == 401
