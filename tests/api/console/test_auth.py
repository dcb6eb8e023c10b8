"""Console access: no page, fragment or action without a session; the session cookie's flags;
CSRF on every state-changing call; logout ends the session server-side; the dashboard behind
the same login (HTTP Basic still works for scripts)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, API_TOKEN


def log_in(client: Any, token: str = ADMIN_TOKEN, *, next_path: str = "/console") -> Any:
    page = client.get("/console/login")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/console/login",
        data={"token": token, "form_token": form_token, "next": next_path},
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    "path", ["/console", "/console/jobs", "/console/queues", "/console/workers",
             "/console/schedules", "/console/jobs/some-task"],
)  # fmt: skip
def test_pages_send_a_browser_to_the_login(api_client: Any, path: str) -> None:
    answer = api_client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=/console")


def test_fragments_and_actions_need_a_session(api_client: Any) -> None:
    answer = api_client.get("/console/fragments/jobs")
    assert answer.status_code == 401 and "log in" in answer.json()["detail"]
    answer = api_client.post("/console/actions/tasks/x/cancel")
    assert answer.status_code == 401


def test_the_api_token_is_not_enough(api_client: Any) -> None:
    answer = log_in(api_client, API_TOKEN)
    assert answer.status_code == 401
    assert "gaveurs_console=" not in answer.headers.get("set-cookie", "")


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(api_client: Any) -> None:
    answer = log_in(api_client)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "gaveurs_console=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = api_client.get("/console/jobs")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    session = api_client.cookies["gaveurs_console"]
    # Logout needs the CSRF token too
    assert api_client.post("/console/logout").status_code == 403
    assert (
        api_client.post(
            "/console/logout", headers={"X-CSRF-Token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    # The cookie value no longer opens anything, even if a browser kept it
    api_client.cookies.set("gaveurs_console", session)
    assert api_client.get("/console/jobs", follow_redirects=False).status_code == 303


def test_login_form_needs_its_own_token(api_client: Any) -> None:
    answer = api_client.post(
        "/console/login",
        data={"token": ADMIN_TOKEN, "form_token": "forged"},
        follow_redirects=False,
    )
    assert answer.status_code == 403


def test_login_never_redirects_off_site(api_client: Any) -> None:
    answer = log_in(api_client, next_path="https://evil.example/")
    assert answer.headers["location"] == "/console"
    answer = log_in(api_client, next_path="//evil.example/console")
    assert answer.headers["location"] == "/console"


def test_actions_refuse_a_missing_or_wrong_csrf_token(api_client: Any) -> None:
    log_in(api_client)
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        answer = api_client.post("/console/actions/schedules/health-check-periodic/run",
                                 headers=headers)  # fmt: skip
        assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]


def test_dashboard_behind_the_same_login(api_client: Any) -> None:
    # A browser without a session goes to the console's login
    answer = api_client.get("/dashboard/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/dashboard/"
    # A script without credentials gets the Basic challenge, and Basic still works
    assert api_client.get("/dashboard/", headers={"Accept": "*/*"}).status_code == 401
    basic = base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()
    with_basic = api_client.get("/dashboard/", headers={"Authorization": f"Basic {basic}"})
    assert with_basic.status_code == 200
    # With a console session it opens
    log_in(api_client)
    assert api_client.get("/dashboard/").status_code == 200
