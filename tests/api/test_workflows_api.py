"""POST/GET/DELETE /api/workflows: a graph validated whole before anything is enqueued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runtime import broker
from tests.support import workflow_jobs  # noqa: F401  (declares the steps' jobs)


@pytest.fixture(autouse=True)
def empty_default_queue() -> Iterator[None]:
    broker().flush("default")
    yield
    broker().flush("default")


def graph(*extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "demo",
        "steps": [
            {"name": "a", "job": "number", "payload": {"key": "api", "value": 2}},
            {"name": "b", "job": "number", "payload": {"key": "api", "value": 3}},
            {
                "name": "sum",
                "job": "total",
                "payload": {"key": "api-sum"},
                "depends_on": ["a", "b"],
                "receives": "results",
            },
            *extra,
        ],
    }


def queued() -> int:
    return int(broker().client.llen("dramatiq:default"))


def test_a_workflow_is_accepted_shown_and_cancelled(api_client: Any, auth: dict[str, str]) -> None:
    # When a graph is posted
    response = api_client.post("/api/workflows", json=graph(), headers=auth)
    # Then it is accepted, its first steps queued, and it can be followed
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"] == body["status_url"]
    assert set(body["steps"]) == {"a", "b", "sum"} and queued() == 2
    shown = api_client.get(body["status_url"]).json()
    assert shown["state"] == "RUNNING" and shown["policy"] == "fail_fast"
    assert [(s["name"], s["state"]) for s in shown["steps"]] == [
        ("a", "PENDING"),
        ("b", "PENDING"),
        ("sum", "WAITING"),
    ]
    # When it is cancelled, twice
    cancelled = api_client.delete(body["status_url"], headers=auth)
    again = api_client.delete(body["status_url"], headers=auth)
    # Then the queued steps are revoked, and the second cancel is a conflict
    assert cancelled.status_code == 200, cancelled.text
    assert sorted(cancelled.json()["cancelled"]) == sorted([body["steps"]["a"], body["steps"]["b"]])
    assert again.status_code == 409 and "already finished" in again.json()["detail"]
    shown = api_client.get(body["status_url"]).json()
    assert [s["state"] for s in shown["steps"]] == ["REVOKED", "REVOKED", "CANCELLED"]


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"name": "c", "job": "rm_rf", "payload": {}}, "step 'c': unknown job 'rm_rf'"),
        ({"name": "c", "job": "number", "payload": {"key": 1}}, "step 'c': invalid payload"),
        ({"name": "c", "job": "number", "payload": {"key": "k"}, "depends_on": ["c"]}, "step 'c'"),
        ({"name": "a", "job": "number", "payload": {"key": "k"}}, "step 'a': two steps"),
    ],
)
def test_a_bad_graph_is_refused_naming_the_step_with_nothing_enqueued(
    api_client: Any, auth: dict[str, str], extra: dict[str, Any], detail: str
) -> None:
    response = api_client.post("/api/workflows", json=graph(extra), headers=auth)
    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert queued() == 0


def test_unknown_workflows_and_missing_tokens(api_client: Any) -> None:
    assert api_client.get("/api/workflows/nope").status_code == 404
    assert api_client.post("/api/workflows", json=graph()).status_code == 401
    assert api_client.delete("/api/workflows/nope").status_code == 401
