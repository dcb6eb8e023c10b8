"""Generic task routes of seed 001: status, lists, cancel, stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.deps import ControlDep, WriterDep
from api.params import Limit, OptionalName, TaskIdPath
from api.schemas import Cancelled, ModelResponse, TaskList, TaskPublic
from runtime import (
    ACTIVE_STATES,
    QUEUES,
    REDIS_ERRORS,
    State,
    async_outbox,
    deferred_record,
    engine,
    live_workers,
)

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("/stats")
def stats(control: ControlDep) -> dict[str, Any]:
    """Workers, per-queue figures and job counts (the shape of seed 001, plus queues)."""
    workers = live_workers(control.client)
    queues = control.queue_stats(QUEUES)
    counts = control.records.counts()
    return {
        "workers": [w["worker"] for w in workers],
        "nb_workers": len(workers),
        "tasks_active": counts[State.STARTED],
        "tasks_scheduled": sum(q.delayed for q in queues),
        "tasks_reserved": max(0, sum(q.in_flight for q in queues) - counts[State.STARTED]),
        "total_pending": sum(q.ready + q.delayed for q in queues),
        "tasks_by_state": {state.value: n for state, n in counts.items()},
        "queues": {
            q.name: {
                "ready": q.ready,
                "delayed": q.delayed,
                "dead_letters": q.dead_letters,
                "in_flight": q.in_flight,
                "oldest_age_seconds": q.oldest_age_seconds,
            }
            for q in queues
        },
        "worker_stats": {
            w["worker"]: {
                "queues": w.get("queues", []),
                "total": w.get("processed", {}),
                "pool": {"max-concurrency": w.get("threads"), "processes": [w.get("pid")]},
                "last_seen": w.get("last_seen"),
            }
            for w in workers
        },
    }


@router.get("/list/active")
def list_active(control: ControlDep, limit: Limit = 50) -> TaskList:
    """Queued, retrying and running jobs, newest first."""
    records = control.records.list(states=ACTIVE_STATES, limit=limit)
    counts = control.records.counts()
    return TaskList(
        total=sum(counts[s] for s in ACTIVE_STATES), tasks=[TaskPublic.of(r) for r in records]
    )


@router.get("")
def list_tasks(
    control: ControlDep,
    state: State | None = None,
    queue: OptionalName = None,
    actor: OptionalName = None,
    client: OptionalName = None,
    limit: Limit = 50,
) -> TaskList:
    """Recent jobs, filtered by state, queue, actor and submitting client."""
    if queue is not None and queue not in QUEUES:
        raise HTTPException(422, detail=f"unknown queue {queue!r}; queues are {list(QUEUES)}")
    records = control.records.list(
        states=[state] if state else None, queue=queue, actor=actor, client=client, limit=limit
    )
    return TaskList(total=len(records), tasks=[TaskPublic.of(r) for r in records])


@router.get("/status/{task_id}", response_model=TaskPublic)
async def task_status(task_id: TaskIdPath) -> ModelResponse:
    """Polled by clients until the job ends: the record is read on the event loop (bounded by
    API_ENQUEUE_TIMEOUT_S) and answered without FastAPI's re-validation; only a job Redis does
    not have, or Redis failing, sends the database read to the thread pool."""
    try:
        record = await async_outbox().record(task_id)
    except REDIS_ERRORS as error:
        # A job accepted while Redis is down is in the journal: answer from there, else 503.
        return ModelResponse(await run_in_threadpool(_while_redis_fails, task_id, error))
    if record is None:
        return ModelResponse(await run_in_threadpool(_not_in_redis, task_id))
    return ModelResponse(TaskPublic.of(record))


def _while_redis_fails(task_id: str, error: Exception) -> TaskPublic:
    deferred = deferred_record(engine(), task_id)
    if deferred is None:
        raise error
    return TaskPublic.of(deferred).model_copy(update={"queued": "deferred"})


def _not_in_redis(task_id: str) -> TaskPublic:
    # Only unknown ids pay this read: a deferred job waiting for (or superseded at) its send.
    deferred = deferred_record(engine(), task_id)
    if deferred is None:
        raise HTTPException(404, detail=f"unknown task_id {task_id!r} (never existed or expired)")
    return TaskPublic.of(deferred).model_copy(
        update={"queued": "deferred" if deferred.state == State.PENDING else "broker"}
    )


router.add_api_route("/{task_id}", task_status, methods=["GET"], response_model=TaskPublic)


@router.delete("/cancel/{task_id}", dependencies=[WriterDep])
def cancel(task_id: TaskIdPath, control: ControlDep) -> Cancelled:
    previous = control.cancel(task_id)
    what = "running job interrupted" if previous == State.STARTED else "queued job skipped"
    return Cancelled(
        task_id=task_id, previous_status=previous, message=f"Task cancellation requested: {what}"
    )
