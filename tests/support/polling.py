"""Waiting for a job to reach a state, through the same records the API reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def status(api_client: Any, task_id: str) -> dict[str, Any]:
    """The job record as the API shows it."""
    response = api_client.get(f"/api/tasks/status/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_state(api_client: Any, task_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(
        lambda: (body := status(api_client, task_id))["status"] == state and body,
        timeout=timeout,
        what=f"{task_id} to be {state}",
    )
