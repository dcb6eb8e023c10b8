"""Named API clients through the API: a new user creates a client, uses it, revokes it and sees
the next call refused, in this process and in two real web processes sharing Redis."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.models import JournalEntry
from domain.platform import db
from runtime import flush_journal
from tests.api.console.test_auth import log_in
from tests.support.api import ApiProcess

HEALTH_CHECK = "/api/tasks/maintenance/health-check"


@pytest.fixture(autouse=True)
def no_waiting_health_check(api_client: Any, admin_auth: dict[str, str]) -> None:
    """health_check is unique: one left waiting by an earlier test (no worker runs in these
    tests) would answer these submits with its own id, submitted by another client. Cancel it,
    as an operator would."""
    waiting = api_client.get(
        "/api/tasks", params={"actor": "health_check", "state": "PENDING", "limit": 100}
    ).json()["tasks"]
    for task in waiting:
        cancelled = api_client.delete(f"/api/tasks/cancel/{task['task_id']}", headers=admin_auth)
        assert cancelled.status_code in (200, 202, 409), cancelled.text


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(api_client: Any, admin_auth: dict[str, str], name: str, *scopes: str) -> str:
    response = api_client.post(
        "/api/clients", json={"name": name, "scopes": list(scopes)}, headers=admin_auth
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active" and body["scopes"] == sorted(scopes)
    token: str = body["token"]
    assert token.startswith("gvt_")
    return token


def test_a_client_submits_jobs_under_its_name_and_is_refused_once_revoked(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    # Given a client created by the admin, with the jobs:write scope
    name = _name("farm-app")
    token = _create(api_client, admin_auth, name, "jobs:write")
    mine = {"Authorization": f"Bearer {token}"}

    # When it submits a job
    accepted = api_client.post(HEALTH_CHECK, headers=mine)
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]

    # Then the job record and the journal entry carry its name, and /api/tasks filters by it
    assert api_client.get(f"/api/tasks/status/{task_id}").json()["client"] == name
    listed = api_client.get("/api/tasks", params={"client": name}).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]
    assert flush_journal()
    with Session(db.make_engine(os.environ["DATABASE_URL"])) as session:
        entry = session.scalar(select(JournalEntry).where(JournalEntry.task_id == task_id))
        assert entry is not None and entry.client == name

    # and the token is never listed, only the client
    listing = api_client.get("/api/clients", headers=admin_auth)
    assert token not in listing.text and name in listing.text

    # When the admin revokes it, the very next call is refused
    revoked = api_client.delete(f"/api/clients/{name}", headers=admin_auth)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = api_client.post(HEALTH_CHECK, headers=mine)
    assert refused.status_code == 401, refused.text


def test_a_token_without_the_scope_is_a_403_naming_the_scope(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    name = _name("reader")
    token = _create(api_client, admin_auth, name, "exports:read")
    mine = {"Authorization": f"Bearer {token}"}
    forbidden = api_client.post(HEALTH_CHECK, headers=mine)
    assert forbidden.status_code == 403
    assert "'jobs:write'" in forbidden.json()["detail"] and name in forbidden.json()["detail"]
    admin_only = api_client.get("/api/clients", headers=mine)
    assert admin_only.status_code == 403 and "'admin'" in admin_only.json()["detail"]


def test_rotation_refuses_the_old_token_and_an_expired_client_is_refused(
    api_client: Any, admin_auth: dict[str, str]
) -> None:
    name = _name("quality-tools")
    old = _create(api_client, admin_auth, name, "jobs:write")
    assert api_client.post(HEALTH_CHECK, headers={"Authorization": f"Bearer {old}"}).is_success
    rotated = api_client.post(f"/api/clients/{name}/rotate", headers=admin_auth)
    new = rotated.json()["token"]
    assert new != old
    assert (
        api_client.post(HEALTH_CHECK, headers={"Authorization": f"Bearer {old}"}).status_code == 401
    )
    assert api_client.post(HEALTH_CHECK, headers={"Authorization": f"Bearer {new}"}).is_success

    expired = api_client.post(
        "/api/clients",
        json={"name": _name("old"), "scopes": ["jobs:write"], "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin_auth,
    ).json()
    assert expired["status"] == "expired"
    headers = {"Authorization": f"Bearer {expired['token']}"}
    assert api_client.post(HEALTH_CHECK, headers=headers).status_code == 401


def test_bad_client_requests_are_clear_errors(api_client: Any, admin_auth: dict[str, str]) -> None:
    bad_scope = api_client.post(
        "/api/clients", json={"name": _name("x"), "scopes": ["root"]}, headers=admin_auth
    )
    assert bad_scope.status_code == 422 and "jobs:write" in bad_scope.json()["detail"]
    reserved = api_client.post(
        "/api/clients", json={"name": "scheduler", "scopes": ["admin"]}, headers=admin_auth
    )
    assert reserved.status_code == 422
    name = _name("dup")
    _create(api_client, admin_auth, name, "jobs:write")
    again = api_client.post(
        "/api/clients", json={"name": name, "scopes": ["jobs:write"]}, headers=admin_auth
    )
    assert again.status_code == 409
    assert api_client.delete("/api/clients/nobody-here", headers=admin_auth).status_code == 404


def test_a_revoked_token_is_refused_at_once_by_every_web_process(
    demo_database: str, tmp_path: Path, admin_auth: dict[str, str]
) -> None:
    # Given two real web processes on the same Redis and database
    with ThreadPoolExecutor(2) as starting:  # they start in parallel: seconds each
        first, second = starting.map(lambda n: ApiProcess({}, log=tmp_path / f"{n}.log"), "ab")
    try:
        name = _name("ops-laptop")
        created = first.post(
            "/api/clients", json={"name": name, "scopes": ["jobs:write"]}, headers=admin_auth
        )
        assert created.status_code == 201, created.text
        mine = {"Authorization": f"Bearer {created.json()['token']}"}
        # and both have the client in their cache after a use (and listen for changes)
        for _ in range(3):
            assert first.post(HEALTH_CHECK, headers=mine).status_code == 202
            assert second.post(HEALTH_CHECK, headers=mine).status_code == 202

        # When the client is revoked through the first process
        revoked = first.client.delete(f"/api/clients/{name}", headers=admin_auth)
        assert revoked.status_code == 200 and revoked.json()["web_processes_told"] >= 2

        # Then the second refuses the token on the very next call, without a restart
        assert second.post(HEALTH_CHECK, headers=mine).status_code == 401
        assert first.post(HEALTH_CHECK, headers=mine).status_code == 401

        # And an admin client's console session on the second ends when the first revokes it
        operator = _name("operator")
        token = first.post(
            "/api/clients", json={"name": operator, "scopes": ["admin"]}, headers=admin_auth
        ).json()["token"]
        with httpx.Client(base_url=second.url) as browser:
            assert log_in(browser, token).status_code == 303
            assert browser.get("/console/jobs").status_code == 200
            assert first.client.delete(f"/api/clients/{operator}", headers=admin_auth).is_success
            assert browser.get("/console/jobs", follow_redirects=False).status_code == 303
    finally:
        first.stop()
        second.stop()
