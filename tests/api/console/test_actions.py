"""Console actions answer `{"detail": ...}` with the right status when they cannot be done."""

from __future__ import annotations

import re
from typing import Any

from tests.api.console.test_auth import log_in


def csrf_of(client: Any) -> dict[str, str]:
    log_in(client)
    page = client.get("/console/jobs")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return {"X-CSRF-Token": token}


def test_unknown_things_are_404(api_client: Any) -> None:
    headers = csrf_of(api_client)
    assert api_client.post("/console/actions/tasks/nope/cancel", headers=headers).status_code == 404
    answer = api_client.post("/console/actions/schedules/nope/run", headers=headers)
    assert answer.status_code == 404 and "nope" in answer.json()["detail"]
    answer = api_client.post("/console/actions/queues/nope/dead-letters/requeue", headers=headers)
    assert answer.status_code == 404


def test_a_job_with_redacted_arguments_is_not_enqueued_again(api_client: Any, auth: Any) -> None:
    # Given an SMS job (its phone number is masked in the record)
    sent = api_client.post(
        "/api/tasks/notifications/sms",
        json={"phone": "+33612345678", "message": "test", "priority": "normal"},
        headers=auth,
    )
    assert sent.status_code == 202, sent.text
    task_id = sent.json()["task_id"]
    headers = csrf_of(api_client)
    # When the operator asks to enqueue it again, it is refused with the reason
    answer = api_client.post(f"/console/actions/tasks/{task_id}/enqueue-again", headers=headers)
    assert answer.status_code == 409 and "redacted" in answer.json()["detail"]
    # And the job page does not offer it
    assert "Enqueue again" not in api_client.get(f"/console/jobs/{task_id}").text
    api_client.post(f"/console/actions/tasks/{task_id}/cancel", headers=headers)


def test_unknown_filters_are_422(api_client: Any) -> None:
    log_in(api_client)
    assert api_client.get("/console/fragments/jobs?state=LOST").status_code == 422
    assert api_client.get("/console/fragments/jobs?queue=nope").status_code == 422
