"""Workflows: chain, group and chord over typed jobs, or any graph of steps by `depends_on`.

    flow = chord(group([train.step(Train(lot_id=i)) for i in lots]),
                 summarise.step(Summary(), receives="results"))
    submitted = runtime.submit_workflow(flow, name="retrain", policy="fail_fast")

A workflow is made of ordinary jobs. Its graph and every step's message, pre-encoded, go to
Redis in one script call (lua/workflow_submit.lua), which enqueues the steps without
dependencies. From then on a step's final state advances its workflow in the same script call
that records that state (lua/workflow_fn.lua): a dependency counter per step, successors
enqueued once, whatever the duplicate deliveries, retries or crashes. Nothing waits or polls.

A step that declares `receives="<field>"` gets its predecessors' outcomes (a list of
StepResult) in that payload field when it runs (middleware/workflow_inputs.py); others get
nothing (Celery's immutable signatures).

Failure policy: `fail_fast` (the default) stops the workflow at the first failed step: it turns
FAILURE and no further step is enqueued (steps already queued or running finish; cancel the
workflow to stop them). Re-driving the failed step from the dead letters resumes the workflow
when it succeeds. `continue` runs every step once its dependencies have finished, whatever
their outcome (a callback sees which failed); the workflow ends FAILURE if any step failed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import dramatiq
import orjson
import redis
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from domain.errors import Conflict, InvalidInput, NotFound
from domain.platform.redact import redact_payload
from runtime.clients import OPTION as CLIENT_OPTION
from runtime.clients import current_client
from runtime.job_records import JobRecords, State, now_ms
from runtime.jobs import REGISTRY, Job
from runtime.scripts import lua, with_transition
from runtime.sealing import opened_for_record

logger = logging.getLogger("gaveurs.workflows")
#: Steps per workflow: a 10,000-wide chord and its callback fit, with room for a chain around it.
MAX_STEPS = 20_000
Policy = Literal["fail_fast", "continue"]
#: What GET shows for a step not enqueued yet (no job record exists for it).
WAITING = "WAITING"
#: What GET shows for a step of a cancelled workflow that will never be enqueued.
CANCELLED = "CANCELLED"
NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"


class StepResult(BaseModel):
    """A predecessor's outcome, as a step that `receives` them sees it."""

    step: str
    task_id: str
    state: str
    result: Any = None
    error: dict[str, Any] | None = None


class RuntimeFilled:
    """Marks a payload field the workflow runtime fills (`receives=`): a client sends none."""


#: The type of a `receives` field: `results: StepResults = Field(default_factory=list)`. Its
#: schema tells clients it takes nothing from them (Job.validate refuses a value), so the
#: payload stays closed and bounded for the API; the runtime's own value is not limited.
StepResults = Annotated[
    list[StepResult],
    RuntimeFilled(),
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": 0,
            "items": {"type": "null"},
            "description": "filled by the workflow runtime with the predecessors' outcomes",
        }
    ),
]


class StepSpec(BaseModel):
    """One step of a workflow graph: a registered job, its payload and what it waits for."""

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    job: str = Field(min_length=1, max_length=200)
    #: Validated by the job's payload model (its schema: GET /api/jobs/{job}).
    payload: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=MAX_STEPS
    )
    #: The payload field (of type StepResults) that receives the predecessors' outcomes.
    receives: str | None = Field(default=None, max_length=100)


class WorkflowSpec(BaseModel):
    """A workflow as a graph of steps: what POST /api/workflows takes and the canvas builds."""

    name: str = Field(default="workflow", pattern=NAME_PATTERN, max_length=100)
    policy: Policy = "fail_fast"
    steps: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)


# -- the canvas: chain, group, chord over typed jobs -------------------------------------------


@dataclass(frozen=True)
class Step:
    """A typed job with its payload, as a workflow node (`job.step(payload)`)."""

    job: Job[Any]
    payload: BaseModel
    receives: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Chain:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Group:
    nodes: tuple[Node, ...]


Node = Step | Chain | Group


def chain(*nodes: Node) -> Chain:
    """Run the nodes one after the other; a group in a chain waits for all its members."""
    return Chain(tuple(nodes))


def group(nodes: Iterable[Node]) -> Group:
    """Run the nodes side by side."""
    return Group(tuple(nodes))


def chord(header: Group, body: Node) -> Chain:
    """The body runs once every member of the header has finished (a chain of the two)."""
    return Chain((header, body))


def graph(node: Node, *, name: str = "workflow", policy: Policy = "fail_fast") -> WorkflowSpec:
    """The graph of steps a canvas describes; steps without a name get `<job>-<n>`."""
    steps: list[StepSpec] = []

    def walk(node: Node, deps: list[str]) -> list[str]:
        if isinstance(node, Step):
            step_name = node.name or f"{node.job.name}-{len(steps) + 1}"
            steps.append(
                StepSpec(
                    name=step_name,
                    job=node.job.name,
                    payload=node.payload.model_dump(mode="json", exclude_defaults=True),
                    depends_on=list(deps),
                    receives=node.receives,
                )
            )
            return [step_name]
        if isinstance(node, Chain):
            for inner in node.nodes:
                deps = walk(inner, deps)
            return deps
        exits: list[str] = []
        for inner in node.nodes:
            exits.extend(walk(inner, deps))
        return exits

    walk(node, [])
    return WorkflowSpec(name=name, policy=policy, steps=steps)


# -- validation: everything checked before anything is enqueued --------------------------------


@dataclass(frozen=True)
class Planned:
    """A validated step with its message ready to enqueue."""

    spec: StepSpec
    job: Job[Any]
    message: dramatiq.Message[Any]
    children: list[str]


def _check_graph(steps: Sequence[StepSpec]) -> None:
    if len(steps) > MAX_STEPS:
        raise InvalidInput(f"workflow has {len(steps)} steps, more than the limit of {MAX_STEPS}")
    names: set[str] = set()
    for step in steps:
        if step.name in names:
            raise InvalidInput(f"step {step.name!r}: two steps have this name")
        names.add(step.name)
    for step in steps:
        for dep in step.depends_on:
            if dep not in names:
                raise InvalidInput(f"step {step.name!r}: depends on unknown step {dep!r}")
            if dep == step.name:
                raise InvalidInput(f"step {step.name!r}: depends on itself")
        if len(set(step.depends_on)) != len(step.depends_on):
            raise InvalidInput(f"step {step.name!r}: lists a dependency twice")
    # Kahn's algorithm: what never becomes ready lies on a cycle (or behind one).
    remaining = {step.name: len(step.depends_on) for step in steps}
    children: dict[str, list[str]] = {step.name: [] for step in steps}
    for step in steps:
        for dep in step.depends_on:
            children[dep].append(step.name)
    ready = [name for name, count in remaining.items() if count == 0]
    while ready:
        for child in children[ready.pop()]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    stuck = sorted(name for name, count in remaining.items() if count > 0)
    if stuck:
        raise InvalidInput(f"step {stuck[0]!r}: the graph has a cycle through {stuck[:10]}")


def _job_of(step: StepSpec) -> Job[Any]:
    job = REGISTRY.get(step.job)
    if job is None:
        raise InvalidInput(f"step {step.name!r}: unknown job {step.job!r}")
    if step.receives is not None and step.receives not in job.payload.model_fields:
        raise InvalidInput(
            f"step {step.name!r}: receives={step.receives!r} is not a field of "
            f"{job.payload.__name__} (fields: {sorted(job.payload.model_fields)})"
        )
    return job


def plan(spec: WorkflowSpec, *, workflow_id: str, max_message_bytes: int) -> list[Planned]:
    """Every step validated (graph, job, payload, size) and its message built; raises
    InvalidInput naming the first bad step."""
    _check_graph(spec.steps)
    children: dict[str, list[str]] = {step.name: [] for step in spec.steps}
    for step in spec.steps:
        for dep in step.depends_on:
            children[dep].append(step.name)
    task_ids = {step.name: str(uuid.uuid4()) for step in spec.steps}
    planned = []
    for step in spec.steps:
        job = _job_of(step)
        try:
            payload = job.validate(step.payload)
        except InvalidInput as error:
            raise InvalidInput(f"step {step.name!r}: {error}") from None
        options: dict[str, Any] = {
            "redis_message_id": str(uuid.uuid4()),
            "workflow": workflow_id,
            "step": step.name,
        }
        if step.receives:
            options["receives"] = step.receives
            options["inputs"] = {dep: task_ids[dep] for dep in step.depends_on}
        if (client := current_client()) is not None:
            options[CLIENT_OPTION] = client  # who asked: the steps' audit entries and children
        message = job.actor.message_with_options(kwargs=payload.model_dump(mode="json"), **options)
        message = dataclasses.replace(message, message_id=task_ids[step.name])
        if len(message.encode()) > max_message_bytes:
            raise InvalidInput(
                f"step {step.name!r}: message larger than {max_message_bytes} B (MAX_MESSAGE_BYTES)"
            )
        planned.append(Planned(step, job, message, children[step.name]))
    return planned


# -- the store: submit, show, cancel ------------------------------------------------------------


class FinishedWorkflow(Conflict):
    """The workflow had already finished: nothing to cancel."""


@dataclass(frozen=True)
class WorkflowSubmitted:
    workflow_id: str
    steps: dict[str, str]  # step name -> task id


class Workflows:
    """Submits, reads and cancels workflows; one instance per Redis client."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        records: JobRecords,
        namespace: str,
        max_message_bytes: int,
        journal: Engine | None = None,
    ) -> None:
        self.client = client
        self.records = records
        self.namespace = namespace
        self.max_message_bytes = max_message_bytes
        #: Where submitted graphs are journaled (None: the journal is off).
        self.journal = journal
        self.prefix = records.prefix
        self._submit = client.register_script(with_transition("workflow_submit"))
        self._cancel = client.register_script(lua("workflow_cancel"))

    def key(self, workflow_id: str) -> str:
        return f"{self.prefix}wf:{workflow_id}"

    def submit(
        self, flow: WorkflowSpec | Node, *, workflow_id: str | None = None
    ) -> WorkflowSubmitted:
        """Validate the whole graph, then create it and enqueue its first steps in one call.
        Retrying with the same `workflow_id` creates it once."""
        spec = flow if isinstance(flow, WorkflowSpec) else graph(flow)
        workflow_id = workflow_id or str(uuid.uuid4())
        planned = plan(spec, workflow_id=workflow_id, max_message_bytes=self.max_message_bytes)
        argv: list[Any] = [spec.policy, spec.name]
        for position, step in enumerate(planned):
            message, job = step.message, step.job
            masked = tuple(job.actor.options.get("redact", ()))
            # As a job record's: sealed fields it masks are opened for the mask, others stay sealed.
            redacted = redact_payload(opened_for_record(message.kwargs, masked), extra=masked)
            fields = [
                "task_id", message.message_id,
                "task_name", job.name,
                "queue", job.queue,
                "args", json.dumps(redacted, default=str, ensure_ascii=False),
                "progress", "0",
                "attempts", "0",
                "workflow", workflow_id,
                "step", step.spec.name,
            ]  # fmt: skip
            if client := message.options.get(CLIENT_OPTION):
                fields += ["client", client]  # who submitted it, as every job record says
            redis_id = message.options["redis_message_id"]
            body = {
                "q": f"{self.namespace}:{job.queue}",
                "m": f"{self.namespace}:{job.queue}.msgs",
                "id": redis_id,
                "body": message.encode().decode(),
                "task": message.message_id,
                "i": position,
                "job": job.name,
                "deps": step.spec.depends_on,
                "fields": fields,
            }
            argv.extend(
                (
                    step.spec.name,
                    len(step.spec.depends_on),
                    json.dumps(step.children) if step.children else "",
                    orjson.dumps(body).decode(),
                )
            )
        if not self._create(workflow_id, argv):
            # Created by an earlier call with this id: its steps, not the ones planned now.
            specs = self.client.hgetall(f"{self.key(workflow_id)}:spec")
            steps = {k.decode(): orjson.loads(v) for k, v in specs.items()}
            ordered = sorted(steps.items(), key=lambda item: item[1]["i"])
            return WorkflowSubmitted(workflow_id, {n: spec["task"] for n, spec in ordered})
        if self.journal is not None:
            # After Redis accepted it, so the journal never holds a graph Redis never had (a
            # retried submit plans new task ids); a process dying in between leaves that one
            # workflow unjournaled, as the job journal's flush window does for jobs.
            from domain.platform import journal

            try:
                journal.record_workflow(
                    self.journal,
                    workflow_id=workflow_id,
                    name=spec.name,
                    graph=json.dumps(argv),
                    submitted_at=datetime.now(UTC),
                )
            except SQLAlchemyError:
                # The workflow runs; only its rebuild after a Redis loss is missing. Failing
                # the submit here would make the client submit it a second time.
                logger.exception("workflow %s could not be journaled", workflow_id)
        return WorkflowSubmitted(
            workflow_id, {step.spec.name: step.message.message_id for step in planned}
        )

    def _create(self, workflow_id: str, graph_args: list[Any], finished: str = "") -> bool:
        head = [workflow_id, now_ms(), self.records.retention_s * 1000]
        return bool(
            self._submit(
                keys=[self.prefix], args=[*head, *graph_args[:2], finished, *graph_args[2:]]
            )
        )

    def restore(self, workflow_id: str, graph_args: list[Any], finished: dict[str, str]) -> bool:
        """Rebuild a workflow Redis lost from its journaled graph and the journaled ends of its
        steps (`finished`: step -> state); the steps not finished that were ready are enqueued
        again. False when Redis has the workflow (nothing to do)."""
        return self._create(workflow_id, graph_args, json.dumps(finished) if finished else "{}")

    def show(self, workflow_id: str) -> dict[str, Any]:
        """The workflow's state and aggregate progress, and each step's state, progress, result
        or error (steps not enqueued yet are WAITING)."""
        wf = self.key(workflow_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(wf)
        pipe.hgetall(f"{wf}:spec")
        pipe.hkeys(f"{wf}:enqueued")
        meta_raw, specs_raw, enqueued_raw = pipe.execute()
        if not meta_raw:
            raise NotFound(f"unknown workflow {workflow_id!r} (never existed or expired)")
        meta = {k.decode(): v.decode() for k, v in meta_raw.items()}
        specs = {k.decode(): orjson.loads(v) for k, v in specs_raw.items()}
        enqueued = {k.decode() for k in enqueued_raw}
        found = {r.task_id: r for r in self.records.get_many(
            specs[name]["task"] for name in specs if name in enqueued
        )}  # fmt: skip
        steps = []
        progress_sum = 0
        for name, spec in sorted(specs.items(), key=lambda item: item[1]["i"]):
            record = found.get(spec["task"])
            if record is not None:
                state, pct = record.state.value, record.progress
                if record.state in (State.SUCCESS, State.FAILURE, State.REVOKED):
                    pct = 100
            else:
                state, pct = (CANCELLED if meta["state"] == "REVOKED" else WAITING), 0
            progress_sum += pct
            steps.append(
                {
                    "name": name,
                    "job": spec["job"],
                    "task_id": spec["task"],
                    "depends_on": spec["deps"],
                    "state": state,
                    "progress": pct,
                    "result": record.result if record else None,
                    "error": record.error if record else None,
                }
            )
        total = int(meta["total"])
        return {
            "workflow_id": workflow_id,
            "name": meta.get("name", ""),
            "state": meta["state"],
            "policy": meta["policy"],
            "total": total,
            "finished": int(meta["finished"]),
            "failed": int(meta["failed"]),
            "progress": round(progress_sum / total) if total else 100,
            "created_at": int(meta["created_at"]),
            "completed_at": int(meta["completed_at"]) if meta.get("completed_at") else None,
            "steps": steps,
        }

    def cancel(self, workflow_id: str) -> tuple[str, list[str]]:
        """Stop the workflow: no step is enqueued from now on. Returns the state it had and the
        task ids of its steps still queued or running (the caller cancels those jobs).
        Raises NotFound, or FinishedWorkflow when it had already finished."""
        out = self._cancel(keys=[self.key(workflow_id)], args=[now_ms()])
        if not out[0]:
            raise NotFound(f"unknown workflow {workflow_id!r} (never existed or expired)")
        before = out[0].decode()
        if not out[1]:
            raise FinishedWorkflow(
                f"workflow {workflow_id} has already finished ({before}); nothing to cancel"
            )
        steps = [name.decode() for name in out[2:]]
        if not steps:
            return before, []
        specs = self.client.hmget(f"{self.key(workflow_id)}:spec", steps)
        return before, [orjson.loads(raw)["task"] for raw in specs if raw]
