"""Workflows over HTTP: submit a graph of steps, follow it, cancel it (runtime/flows.py).

The whole graph is validated (known jobs, payloads against their models, no cycle, size) before
anything is enqueued; a bad one is refused naming the step, with nothing queued.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from api.deps import WriterDep
from runtime import WorkflowSpec, cancel_workflow, workflows

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
WorkflowIdPath = Annotated[str, Path(min_length=1, max_length=100)]


class WorkflowAccepted(BaseModel):
    workflow_id: str
    status_url: str
    #: Step name -> the task id its job will have (follow one with /api/tasks/status/{id}).
    steps: dict[str, str]


class StepPublic(BaseModel):
    name: str
    job: str
    task_id: str
    depends_on: list[str]
    #: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED once enqueued; WAITING before;
    #: CANCELLED when its workflow was cancelled before it could be enqueued.
    state: str
    progress: int
    result: Any = None
    error: dict[str, Any] | None = None


class WorkflowPublic(BaseModel):
    workflow_id: str
    name: str
    #: RUNNING, SUCCESS, FAILURE or REVOKED.
    state: str
    policy: str
    total: int
    finished: int
    failed: int
    progress: int
    created_at: int
    completed_at: int | None
    steps: list[StepPublic]


class WorkflowCancelled(BaseModel):
    workflow_id: str
    previous_state: str
    #: Task ids of the steps that were queued or running and are now REVOKED.
    cancelled: list[str]


@router.post(
    "",
    status_code=202,
    dependencies=[WriterDep],
    responses={202: {"model": WorkflowAccepted, "description": "Accepted: first steps queued."}},
)
def submit_workflow(spec: WorkflowSpec) -> Response:
    """Start a workflow: steps (job, payload, depends_on, receives) and a failure policy."""
    submitted = workflows().submit(spec)
    status_url = f"/api/workflows/{submitted.workflow_id}"
    body = WorkflowAccepted(
        workflow_id=submitted.workflow_id, status_url=status_url, steps=submitted.steps
    )
    return Response(
        orjson.dumps(body.model_dump()),
        status_code=202,
        media_type="application/json",
        headers={"Location": status_url},
    )


@router.get("/{workflow_id}")
def show_workflow(workflow_id: WorkflowIdPath) -> WorkflowPublic:
    """The workflow's state and progress, and each step's state, progress, result or error."""
    return WorkflowPublic.model_validate(workflows().show(workflow_id))


@router.delete("/{workflow_id}", dependencies=[WriterDep])
def cancel(workflow_id: WorkflowIdPath) -> WorkflowCancelled:
    """Cancel every step not finished; 409 when the workflow has already finished."""
    return WorkflowCancelled.model_validate(cancel_workflow(workflow_id))
