"""The workflow engine against the session's real Redis, without a worker: steps are finished by
writing their records' final states, as a worker's settle does, so every interleaving a test
needs (duplicates, concurrent ends, re-drives) is forced exactly."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import Conflict, InvalidInput
from ops.local_redis import RedisServer
from runtime import (
    MAX_STEPS,
    State,
    StepSpec,
    WorkflowSpec,
    broker,
    chain,
    chord,
    graph,
    group,
    records,
    submit_workflow,
    workflows,
)
from tests.support import workflow_jobs as w


@pytest.fixture(autouse=True)
def empty_default_queue(redis_server: RedisServer, demo_database: str) -> Iterator[None]:
    broker().flush("default")
    yield
    broker().flush("default")


def queued() -> int:
    return int(broker().client.llen("dramatiq:default"))


def finish(task_id: str, state: State = State.SUCCESS, result: Any = 1) -> None:
    """What a worker's settle writes at the end of a step."""
    fields = {"result": str(result)} if state == State.SUCCESS else {}
    records().transition(task_id, state, epoch=0, fields=fields)


def steps_of(workflow_id: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in workflows().show(workflow_id)["steps"]}


def numbers(n: int, key: str = "k") -> list[Any]:
    return [w.number.step(w.Number(key=key, value=i), name=f"n{i}") for i in range(n)]


def test_a_chord_enqueues_its_callback_once_when_the_last_member_ends() -> None:
    # Given a chord of three numbers and a total
    flow = chord(group(numbers(3)), w.total.step(w.Total(key="t"), receives="results", name="t"))
    submitted = submit_workflow(flow)
    # Then only the members are queued, the callback waits
    assert queued() == 3
    assert steps_of(submitted.workflow_id)["t"]["state"] == "WAITING"
    # When two members end, even twice each (a retried settle, a duplicate delivery's write)
    for name in ("n0", "n1"):
        finish(submitted.steps[name])
        finish(submitted.steps[name])
    assert queued() == 3
    # When the last one ends
    finish(submitted.steps["n2"])
    # Then the callback is queued, once, with its record
    assert queued() == 4
    finish(submitted.steps["n2"])
    assert queued() == 4
    assert steps_of(submitted.workflow_id)["t"]["state"] == "PENDING"
    view = workflows().show(submitted.workflow_id)
    assert (view["state"], view["finished"], view["progress"]) == ("RUNNING", 3, 75)
    finish(submitted.steps["t"])
    assert workflows().show(submitted.workflow_id)["state"] == "SUCCESS"


def test_concurrent_ends_of_every_member_enqueue_the_callback_once() -> None:
    # Given a 200-wide chord
    flow = chord(group(numbers(200)), w.total.step(w.Total(key="t"), name="t"))
    submitted = submit_workflow(flow)
    members = [submitted.steps[f"n{i}"] for i in range(200)]
    # When 8 threads each end every member (duplicates racing each other)

    def end_all() -> None:
        for task_id in members:
            finish(task_id)

    threads = [threading.Thread(target=end_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the callback was enqueued once
    assert queued() == 201
    view = workflows().show(submitted.workflow_id)
    assert (view["finished"], steps_of(submitted.workflow_id)["t"]["state"]) == (200, "PENDING")


def test_a_chord_nested_in_a_chain_runs_in_order() -> None:
    first = w.number.step(w.Number(key="a"), name="first")
    last = w.number.step(w.Number(key="z"), name="last")
    flow = chain(first, chord(group(numbers(2)), w.total.step(w.Total(key="t"), name="t")), last)
    spec = graph(flow)
    assert {s.name: s.depends_on for s in spec.steps} == {
        "first": [],
        "n0": ["first"],
        "n1": ["first"],
        "t": ["n0", "n1"],
        "last": ["t"],
    }
    submitted = submit_workflow(spec)
    for name, queued_after in (("first", 3), ("n0", 3), ("n1", 4), ("t", 5), ("last", 5)):
        finish(submitted.steps[name])
        assert queued() == queued_after, name
    assert workflows().show(submitted.workflow_id)["state"] == "SUCCESS"


def test_fail_fast_holds_the_workflow_and_a_redriven_step_resumes_it() -> None:
    # Given a chain a -> b beside a lone c, failing fast
    spec = WorkflowSpec(
        steps=[
            StepSpec(name="a", job="number", payload={"key": "a"}),
            StepSpec(name="b", job="number", payload={"key": "b"}, depends_on=["a"]),
            StepSpec(name="c", job="number", payload={"key": "c"}),
            StepSpec(name="d", job="number", payload={"key": "d"}, depends_on=["c"]),
        ]
    )
    submitted = submit_workflow(spec)
    # When a fails (dead-lettered)
    finish(submitted.steps["a"], State.FAILURE)
    # Then the workflow is FAILURE and nothing new starts, not even c's successor
    finish(submitted.steps["c"])
    assert workflows().show(submitted.workflow_id)["state"] == "FAILURE"
    assert queued() == 2
    assert steps_of(submitted.workflow_id)["d"]["state"] == "WAITING"
    # When a is re-driven (a new epoch) and succeeds
    records().transition(submitted.steps["a"], State.PENDING, epoch=10_000)
    records().transition(submitted.steps["a"], State.SUCCESS, epoch=10_000)
    # Then the workflow resumes: b and the held d are queued
    assert queued() == 4
    assert workflows().show(submitted.workflow_id)["state"] == "RUNNING"
    finish(submitted.steps["b"])
    finish(submitted.steps["d"])
    assert workflows().show(submitted.workflow_id)["state"] == "SUCCESS"


def test_continue_runs_the_callback_after_a_failure_and_ends_failure() -> None:
    flow = chord(group(numbers(2)), w.total.step(w.Total(key="t"), name="t"))
    submitted = submit_workflow(flow, policy="continue")
    finish(submitted.steps["n0"], State.FAILURE)
    finish(submitted.steps["n1"])
    assert queued() == 3
    finish(submitted.steps["t"])
    view = workflows().show(submitted.workflow_id)
    assert (view["state"], view["failed"]) == ("FAILURE", 1)


def test_cancel_stops_the_workflow_and_a_finished_one_answers_conflict() -> None:
    submitted = submit_workflow(chain(*numbers(3)))
    # When it is cancelled while n0 is queued
    from runtime import cancel_workflow

    outcome = cancel_workflow(submitted.workflow_id)
    # Then n0 is revoked, later steps will never be enqueued
    assert outcome["cancelled"] == [submitted.steps["n0"]]
    states = {name: s["state"] for name, s in steps_of(submitted.workflow_id).items()}
    assert states == {"n0": "REVOKED", "n1": "CANCELLED", "n2": "CANCELLED"}
    assert workflows().show(submitted.workflow_id)["state"] == "REVOKED"
    with pytest.raises(Conflict):
        cancel_workflow(submitted.workflow_id)


@pytest.mark.parametrize(
    ("steps", "named"),
    [
        ([StepSpec(name="a", job="nope")], "step 'a': unknown job 'nope'"),
        ([StepSpec(name="a", job="number", payload={"key": ""})], "step 'a': invalid payload"),
        ([StepSpec(name="a", job="number", payload={"key": "k", "x": 1})], "step 'a'"),
        (
            [
                StepSpec(name="a", job="number", payload={"key": "k"}, depends_on=["b"]),
                StepSpec(name="b", job="number", payload={"key": "k"}, depends_on=["a"]),
            ],
            "cycle",
        ),
        ([StepSpec(name="a", job="number", payload={"key": "k"}, depends_on=["z"])], "'z'"),
        ([StepSpec(name="a", job="number", payload={"key": "k"}, receives="nope")], "receives"),
    ],
)
def test_a_bad_graph_is_refused_naming_the_step_and_nothing_is_enqueued(
    steps: list[StepSpec], named: str
) -> None:
    before = broker().client.dbsize()
    with pytest.raises(InvalidInput, match=named):
        submit_workflow(WorkflowSpec(steps=steps))
    assert queued() == 0
    assert broker().client.dbsize() == before


def test_a_graph_over_the_size_limit_is_refused() -> None:
    key = uuid.uuid4().hex
    steps = [
        StepSpec(name=f"s{i}", job="number", payload={"key": key}) for i in range(MAX_STEPS + 1)
    ]
    # (Refused by the request model already, and by the engine for a spec built otherwise.)
    with pytest.raises(ValidationError, match="at most 20000"):
        WorkflowSpec(steps=steps)
    with pytest.raises(InvalidInput, match="limit"):
        submit_workflow(WorkflowSpec.model_construct(name="big", policy="fail_fast", steps=steps))
    assert queued() == 0


def test_a_field_the_runtime_fills_is_refused_from_clients() -> None:
    results = [{"step": "x", "task_id": "t", "state": "SUCCESS", "result": 1}]
    with pytest.raises(InvalidInput, match="filled by the workflow runtime"):
        w.total.validate({"key": "k", "results": results})
    bad = StepSpec(name="t", job="total", payload={"key": "k", "results": results})
    with pytest.raises(InvalidInput, match="step 't'"):
        submit_workflow(WorkflowSpec(steps=[bad]))


def test_a_workflow_redis_lost_is_rebuilt_from_the_journal(demo_database: str) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy.orm import Session

    from domain.platform import journal
    from runtime import engine, reconcile_workflows

    # Given a chain a -> b -> c beside a lone d, journaled at submit, where a has finished
    spec = WorkflowSpec(
        steps=[
            StepSpec(name="a", job="number", payload={"key": "a"}),
            StepSpec(name="b", job="number", payload={"key": "b"}, depends_on=["a"]),
            StepSpec(name="c", job="number", payload={"key": "c"}, depends_on=["b"]),
            StepSpec(name="d", job="number", payload={"key": "d"}),
        ]
    )
    submitted = submit_workflow(spec)
    finish(submitted.steps["a"])
    ended = journal.Finished(
        submitted.steps["a"], "number", "default", "SUCCESS", datetime.now(UTC)
    )
    journal.record_finished(engine(), [ended])
    # When Redis loses the workflow, its records and its queue
    client = broker().client
    for key in client.scan_iter(f"gaveurs:jobs:wf:{submitted.workflow_id}*"):
        client.delete(key)
    for task_id in submitted.steps.values():
        records().delete(task_id)
    broker().flush("default")
    # And the reconciler runs (as broker maintenance does every minute)
    later = datetime.now(UTC) + timedelta(seconds=30)
    restored = reconcile_workflows(broker(), records(), engine(), now=later)
    # Then the workflow is back: a finished, b and d queued again, c waiting
    assert submitted.workflow_id in restored
    states = {name: s["state"] for name, s in steps_of(submitted.workflow_id).items()}
    assert states == {"a": "SUCCESS", "b": "PENDING", "c": "WAITING", "d": "PENDING"}
    assert queued() == 2
    # And a second pass changes nothing; the workflow goes on to its end
    assert submitted.workflow_id not in reconcile_workflows(
        broker(), records(), engine(), now=later
    )
    for name in ("b", "c", "d"):
        finish(submitted.steps[name])
    assert workflows().show(submitted.workflow_id)["state"] == "SUCCESS"
    reconcile_workflows(broker(), records(), engine(), now=later)
    with Session(engine()) as session:
        left = journal.unfinished_workflows(
            session,
            submitted_after=later - timedelta(days=1),
            submitted_before=later,
            limit=10_000,
        )
    assert submitted.workflow_id not in {entry.workflow_id for entry in left}
