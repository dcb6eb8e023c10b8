"""Queues and their dead letters: list, re-drive one or all, delete (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.deps import AdminDep, ControlDep, WriterDep
from api.params import Limit, NamePath, Offset, TaskIdPath
from api.schemas import DeadLetterPage, DeadLetterPublic, QueuePublic, from_ms
from runtime import QUEUES

router = APIRouter(prefix="/api/queues", tags=["queues"])


def known(queue: str) -> str:
    if queue not in QUEUES:
        raise HTTPException(404, detail=f"unknown queue {queue!r}; queues are {list(QUEUES)}")
    return queue


@router.get("")
def list_queues(control: ControlDep) -> list[QueuePublic]:
    return [QueuePublic(**vars(q)) for q in control.queue_stats(QUEUES)]


@router.get("/{queue}/dead-letters")
def dead_letters(
    queue: NamePath,
    control: ControlDep,
    offset: Offset = 0,
    limit: Limit = 50,
) -> DeadLetterPage:
    total, letters = control.dead_letters(known(queue), offset=offset, limit=limit)
    rows = []
    for letter in letters:
        record = letter.record
        error = record.error if record else None
        rows.append(
            DeadLetterPublic(
                task_id=letter.task_id,
                task_name=letter.task_name,
                queue=queue,
                failed_at=from_ms(int(letter.failed_at * 1000)),
                attempts=record.attempts if record else None,
                reason=record.failure_reason if record else None,
                error=f"{error['type']}: {error['message']}" if error else None,
                args=record.args if record else None,
            )
        )
    return DeadLetterPage(queue=queue, total=total, dead_letters=rows)


@router.post("/{queue}/dead-letters/requeue", dependencies=[WriterDep])
def requeue_all(queue: NamePath, control: ControlDep) -> dict[str, Any]:
    return {"queue": queue, **control.requeue_all_dead_letters(known(queue))}


@router.post("/{queue}/dead-letters/{task_id}/requeue", dependencies=[WriterDep])
def requeue_one(queue: NamePath, task_id: TaskIdPath, control: ControlDep) -> dict[str, Any]:
    control.requeue_dead_letter(known(queue), task_id)
    return {
        "status": "requeued",
        "task_id": task_id,
        "queue": queue,
        "status_url": f"/api/tasks/status/{task_id}",
    }


@router.delete("/{queue}/dead-letters/{task_id}", dependencies=[AdminDep])
def delete_one(queue: NamePath, task_id: TaskIdPath, control: ControlDep) -> dict[str, Any]:
    control.delete_dead_letter(known(queue), task_id)
    return {"status": "deleted", "task_id": task_id, "queue": queue}


@router.delete("/{queue}/dead-letters", dependencies=[AdminDep])
def delete_all(queue: NamePath, control: ControlDep) -> dict[str, Any]:
    return {
        "status": "deleted",
        "queue": queue,
        "deleted": control.delete_all_dead_letters(known(queue)),
    }
