"""Workflows run by a real worker process on the real Redis: results passed along a chord,
failures under each policy, re-drive, cancel midway, forced duplicate deliveries, SIGKILLs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops.local_redis import RedisServer
from runtime import (
    Control,
    StepSpec,
    WorkflowSpec,
    broker,
    cancel_workflow,
    chain,
    chord,
    group,
    records,
    submit_workflow,
    workflows,
)
from tests.support import workflow_jobs as w
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wf_worker(redis_server: RedisServer, demo_database: str) -> Iterator[WorkerProcess]:
    process = WorkerProcess(redis_server.client, module="tests.support.workflow_jobs", threads=8)
    yield process
    process.stop()


def finished(workflow_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (v := workflows().show(workflow_id))["state"] in ("SUCCESS", "FAILURE") and v,
        timeout=timeout,
        what=f"workflow {workflow_id} to finish",
    )


def step(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in view["steps"] if s["name"] == name)


def test_a_chord_of_1000_steps_passes_their_results_to_one_callback(
    wf_worker: WorkerProcess,
) -> None:
    key = uuid.uuid4().hex
    # Given a chord of 1,000 numbers whose callback sums their results
    members = [w.number.step(w.Number(key=key, value=i)) for i in range(1000)]
    callback = w.total.step(w.Total(key=f"{key}-total"), receives="results", name="total")
    submitted = submit_workflow(chord(group(members), callback))
    # When the worker runs it
    view = finished(submitted.workflow_id, timeout=120)
    # Then the callback ran once, after all of them, and saw every result
    assert view["state"] == "SUCCESS" and view["progress"] == 100
    assert step(view, "total")["result"] == {"sum": sum(range(1000)), "count": 1000, "failed": []}
    assert w.runs(f"{key}-total") == 1
    assert w.runs(key) == 1000


def test_fail_fast_stops_at_a_dead_lettered_step_and_its_redrive_resumes(
    wf_worker: WorkerProcess,
) -> None:
    key = uuid.uuid4().hex
    w.make_fail(f"{key}-b")
    # Given a chain a -> b -> c where b fails permanently
    flow = chain(
        *(w.number.step(w.Number(key=f"{key}-{n}", value=1), name=n) for n in ("a", "b", "c"))
    )
    submitted = submit_workflow(flow)
    # Then the workflow is FAILURE and c never runs
    view = wait_for(
        lambda: (v := workflows().show(submitted.workflow_id))["state"] == "FAILURE" and v,
        what="FAILURE",
    )
    assert [s["state"] for s in view["steps"]] == ["SUCCESS", "FAILURE", "WAITING"]
    time.sleep(0.5)
    assert w.runs(f"{key}-c") == 0
    # When b's cause is fixed and it is re-driven from the dead letters
    w.make_fail(f"{key}-b", fail=False)
    Control(broker(), records()).requeue_dead_letter("default", submitted.steps["b"])
    # Then the workflow resumes and ends SUCCESS, each step having run once more at most
    view = wait_for(
        lambda: (v := workflows().show(submitted.workflow_id))["state"] == "SUCCESS" and v,
        what="SUCCESS after re-drive",
    )
    assert (w.runs(f"{key}-a"), w.runs(f"{key}-b"), w.runs(f"{key}-c")) == (1, 2, 1)


def test_continue_runs_the_callback_which_sees_the_failed_step(wf_worker: WorkerProcess) -> None:
    key = uuid.uuid4().hex
    w.make_fail(f"{key}-bad")
    members = [
        w.number.step(w.Number(key=f"{key}-good", value=5), name="good"),
        w.number.step(w.Number(key=f"{key}-bad", value=7), name="bad"),
    ]
    callback = w.total.step(w.Total(key=f"{key}-t"), receives="results", name="total")
    submitted = submit_workflow(chord(group(members), callback), policy="continue")
    view = finished(submitted.workflow_id)
    assert view["state"] == "FAILURE" and view["failed"] == 1
    assert step(view, "total")["result"] == {"sum": 5, "count": 2, "failed": ["bad"]}
    assert step(view, "bad")["error"]["message"] == f"step {key}-bad told to fail"


def test_cancel_midway_interrupts_the_running_step_and_enqueues_nothing_more(
    wf_worker: WorkerProcess,
) -> None:
    key = uuid.uuid4().hex
    slow = [w.number.step(w.Number(key=f"{key}-{i}", sleep_ms=3000), name=f"s{i}") for i in "12"]
    submitted = submit_workflow(chain(*slow))
    wait_for(lambda: w.runs(f"{key}-1"), what="first step to start")
    # When the workflow is cancelled while its first step runs
    outcome = cancel_workflow(submitted.workflow_id)
    # Then that step is revoked, and the second never runs
    assert outcome["cancelled"] == [submitted.steps["s1"]]
    view = workflows().show(submitted.workflow_id)
    assert view["state"] == "REVOKED"
    assert [s["state"] for s in view["steps"]] == ["REVOKED", "CANCELLED"]
    time.sleep(3.5)
    assert w.runs(f"{key}-2") == 0


def test_forced_duplicate_deliveries_run_no_successor_twice(wf_worker: WorkerProcess) -> None:
    key = uuid.uuid4().hex
    client = broker().client
    # Given a chord whose members are slow enough to be fetched twice at once
    spec = WorkflowSpec(
        steps=[
            *(
                StepSpec(name=f"m{i}", job="number", payload={"key": key, "sleep_ms": 300})
                for i in range(4)
            ),
            StepSpec(
                name="t", job="total", payload={"key": f"{key}-t"}, depends_on=["m0", "m1", "m2"]
            ),
            StepSpec(name="after", job="number", payload={"key": f"{key}-a"}, depends_on=["t"]),
        ]
    )
    import orjson

    submitted = submit_workflow(spec)

    def deliver_again(step: str) -> None:
        raw = client.hget(f"gaveurs:jobs:wf:{submitted.workflow_id}:spec", step)
        body = orjson.loads(raw)
        client.hset("dramatiq:default.msgs", body["id"], body["body"])
        client.rpush("dramatiq:default", body["id"])

    # When every member's message is pushed a second time (Redis redelivers at least once), taken
    # from the workflow's spec: the worker may already have fetched the queued ones
    for step in ("m0", "m1", "m2", "m3"):
        deliver_again(step)
    view = finished(submitted.workflow_id)
    # And after the end, a finished member's message is delivered again
    deliver_again("m0")
    time.sleep(1.0)
    # Then the callback and its successor ran exactly once
    assert view["state"] == "SUCCESS"
    assert (w.runs(f"{key}-t"), w.runs(f"{key}-a")) == (1, 1)
    assert workflows().show(submitted.workflow_id)["finished"] == 6
