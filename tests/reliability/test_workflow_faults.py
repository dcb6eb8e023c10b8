"""Workflows under faults: workers SIGKILLed mid-workflow, Redis killed and restarted (AOF).

Each step is a `rel_effect` job whose executions are written to the scenario's SQLite ledger,
which outlives Redis. A successor enqueued twice would run twice: the final step must have run
exactly once, and only the steps running when a fault hit may have run more than once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.stack import Stack
from tests.support.polling import wait_for

STAGES = 4
WIDTH = 2


def staged_graph(run: str, *, ms: int) -> tuple[dict[str, Any], list[str]]:
    """A chain of groups: every step of stage k waits for all of stage k - 1, then one final
    step after the last stage. Returns the graph and every step's effect key, final last."""
    steps: list[dict[str, Any]] = []
    previous: list[str] = []
    for stage in range(STAGES):
        names = [f"s{stage}-{i}" for i in range(WIDTH)]
        for name in names:
            steps.append(
                {
                    "name": name,
                    "job": "rel_effect",
                    "payload": {"key": f"{run}-{name}", "ms": ms},
                    "depends_on": previous,
                }
            )
        previous = names
    steps.append(
        {
            "name": "final",
            "job": "rel_effect",
            "payload": {"key": f"{run}-final", "ms": 0},
            "depends_on": previous,
        }
    )
    return {"name": "staged", "steps": steps}, [s["payload"]["key"] for s in steps]


def submit(stack: Stack, graph: dict[str, Any]) -> str:
    assert stack.api is not None
    response = stack.api.post("/api/workflows", json=graph)
    assert response.status_code == 202, response.text
    return str(response.json()["workflow_id"])


def test_a_worker_sigkilled_three_times_mid_workflow_loses_no_step_and_repeats_no_successor(
    stack_factory: Callable[..., Stack],
) -> None:
    # (A worker silent for 2 s counts as dead: each kill costs seconds, not the default 5.)
    stack = stack_factory(BROKER_MAINTENANCE_CHANCE="1000000", WORKER_HEARTBEAT_TIMEOUT_MS="2000")
    stack.start_api()
    worker = stack.start_worker(threads=WIDTH)
    run = uuid.uuid4().hex[:6]
    graph, keys = staged_graph(run, ms=1000)
    workflow_id = submit(stack, graph)
    with stack.maintenance(every_s=1):
        # When the worker is SIGKILLed while each of the first three stages runs
        for stage in range(3):
            wait_for(
                lambda s=stage: any(stack.executions()[f"{run}-s{s}-{i}"] for i in range(WIDTH)),
                timeout=90,
                what=f"stage {stage} to start",
            )
            worker.kill()
            worker = stack.start_worker(threads=WIDTH)
        # Then the workflow still ends SUCCESS
        view = finished_view(stack, workflow_id)
    executions = stack.executions()
    assert stack.effects() >= set(keys)
    assert view["finished"] == view["total"] == len(keys)
    # and the successor steps ran once: only the killed stages' steps may have run twice
    assert executions[f"{run}-final"] == 1
    assert all(executions[f"{run}-s3-{i}"] == 1 for i in range(WIDTH))
    repeats = sum(count - 1 for count in executions.values() if count > 1)
    assert repeats <= 3 * WIDTH
    print(f"\n[workflows] 3 SIGKILLs: {len(keys)} steps SUCCESS, {repeats} re-runs of killed steps")


def finished_view(stack: Stack, workflow_id: str) -> dict[str, Any]:
    """The workflow once SUCCESS; a 404 meanwhile (Redis lost it, not rebuilt yet) is waited out."""

    def success() -> dict[str, Any] | None:
        assert stack.api is not None
        response = stack.api.client.get(f"/api/workflows/{workflow_id}")
        if response.status_code != 200 or response.json()["state"] != "SUCCESS":
            return None
        return dict(response.json())

    return wait_for(success, timeout=120, interval=0.5, what="the workflow to finish")


@pytest.mark.parametrize("persistence", ["aof", "none"])
def test_redis_killed_and_restarted_mid_workflow_loses_no_step(
    stack_factory: Callable[..., Stack], persistence: str
) -> None:
    # Given Redis with AOF (fsync always), or without persistence (the journal must rebuild)
    aof = {"appendonly": True, "appendfsync": "always"} if persistence == "aof" else {}
    stack = stack_factory(**aof, BROKER_MAINTENANCE_CHANCE="1000000")
    stack.start_api()
    stack.start_worker(threads=WIDTH)
    run = uuid.uuid4().hex[:6]
    graph, keys = staged_graph(run, ms=700)
    workflow_id = submit(stack, graph)
    with stack.maintenance(every_s=1):
        wait_for(lambda: len(stack.effects()) >= WIDTH, timeout=60, what="the first stage")
        # When Redis is killed mid-workflow and restarted
        stack.redis.kill()
        time.sleep(1)
        stack.redis.start()
        # Then the workflow ends SUCCESS with every step (rebuilt by broker maintenance from the
        # journal when Redis came back empty), and its final step ran once
        view = finished_view(stack, workflow_id)
    executions = stack.executions()
    assert stack.effects() >= set(keys)
    assert view["finished"] == view["total"] == len(keys)
    assert executions[f"{run}-final"] == 1
    repeats = sum(count - 1 for count in executions.values() if count > 1)
    assert repeats <= WIDTH  # at most the steps running when Redis died
    print(
        f"\n[workflows] Redis restart ({persistence}): {len(keys)} steps SUCCESS, {repeats} re-runs"
    )
