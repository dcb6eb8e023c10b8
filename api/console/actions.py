"""What an operator can do from the console: cancel, re-drive, delete, enqueue again, run a
schedule entry now. Each call needs the session and its CSRF token (X-CSRF-Token header) and
answers JSON, with `{"detail": ...}` and the right status when it cannot be done."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.console.auth import ActionSession
from api.console.views import masked
from api.deps import ControlDep
from api.params import NamePath, TaskIdPath
from api.routers.queues import known
from runtime import REGISTRY
from scheduler.schedule import SCHEDULE

router = APIRouter(prefix="/console/actions", include_in_schema=False)


@router.post("/tasks/{task_id}/cancel")
def cancel(task_id: TaskIdPath, control: ControlDep, _: ActionSession) -> dict[str, Any]:
    previous = control.cancel(task_id)
    return {"detail": f"cancelled (was {previous.value})", "task_id": task_id}


@router.post("/tasks/{task_id}/enqueue-again")
def enqueue_again(task_id: TaskIdPath, control: ControlDep, _: ActionSession) -> dict[str, Any]:
    record = control.records.get(task_id)
    if record is None:
        raise HTTPException(404, detail=f"unknown task_id {task_id!r} (never existed or expired)")
    job = REGISTRY.get(record.task_name)
    if job is None:
        raise HTTPException(409, detail=f"job {record.task_name!r} is not installed here")
    if masked(record.task_name, record.args):
        # The record holds masked values (a phone, an e-mail): sending them again would be wrong.
        raise HTTPException(409, detail="this job's arguments are redacted; enqueue it by API")
    outcome = job.submit(job.validate(record.args))
    return {
        "detail": "already queued or running" if outcome.duplicate else "enqueued",
        "task_id": outcome.task_id,
        "redirect": f"/console/jobs/{outcome.task_id}",
    }


@router.post("/queues/{queue}/dead-letters/{task_id}/requeue")
def requeue_one(
    queue: NamePath, task_id: TaskIdPath, control: ControlDep, _: ActionSession
) -> dict[str, Any]:
    control.requeue_dead_letter(known(queue), task_id)
    return {"detail": "re-driven", "task_id": task_id}


@router.post("/queues/{queue}/dead-letters/requeue")
def requeue_all(queue: NamePath, control: ControlDep, _: ActionSession) -> dict[str, Any]:
    outcome = control.requeue_all_dead_letters(known(queue))
    return {"detail": f"re-drove {outcome.get('requeued', 0)} dead letters", **outcome}


@router.post("/queues/{queue}/dead-letters/{task_id}/delete")
def delete_one(
    queue: NamePath, task_id: TaskIdPath, control: ControlDep, _: ActionSession
) -> dict[str, Any]:
    control.delete_dead_letter(known(queue), task_id)
    return {"detail": "deleted", "task_id": task_id}


@router.post("/queues/{queue}/dead-letters/delete")
def delete_all(queue: NamePath, control: ControlDep, _: ActionSession) -> dict[str, Any]:
    deleted = control.delete_all_dead_letters(known(queue))
    return {"detail": f"deleted {deleted} dead letters", "deleted": deleted}


@router.post("/schedules/{name}/run")
def run_now(name: NamePath, _: ActionSession) -> dict[str, Any]:
    """Send the entry's job once, as the clock would, through the job's uniqueness."""
    entry = next((e for e in SCHEDULE if e.name == name), None)
    if entry is None:
        raise HTTPException(404, detail=f"no schedule entry named {name!r}")
    job = REGISTRY.get(entry.actor)
    if job is None:
        raise HTTPException(409, detail=f"entry {name!r} runs {entry.actor!r}, not installed")
    outcome = job.submit(job.validate(entry.args))
    return {
        "detail": "already queued or running" if outcome.duplicate else "sent",
        "task_id": outcome.task_id,
        "redirect": f"/console/jobs/{outcome.task_id}",
    }
