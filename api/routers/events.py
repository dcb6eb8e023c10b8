"""`GET /api/tasks/{task_id}/events`: a job's record as Server-Sent Events until its final state.

Each event's data is the record as `GET /api/tasks/status/{task_id}` answers it, sent when the
job's state or progress changes (Redis pub/sub through the process's one subscription,
runtime/live.py), and the stream closes after the final state. With no change for 15 s the
record is read again and a comment line keeps proxies from closing the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.params import TaskIdPath
from api.schemas import TaskPublic
from runtime import (
    LIVE_KEEPALIVE_S,
    REDIS_ERRORS,
    JobRecord,
    current_settings,
    deferred_record,
    engine,
    record_events,
    records,
)

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

#: Tells nginx-style proxies not to buffer the stream.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _read(task_id: str) -> TaskPublic | None:
    record: JobRecord | None = records().get(task_id)
    if record is not None:
        return TaskPublic.of(record)
    deferred = deferred_record(engine(), task_id)
    if deferred is None:
        return None
    queued = "deferred" if deferred.active else "broker"
    return TaskPublic.of(deferred).model_copy(update={"queued": queued})


def _event(task: TaskPublic) -> bytes:
    return b"data: " + orjson.dumps(task.model_dump(mode="json")) + b"\n\n"


@router.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "record updates"}},
)
async def task_events(task_id: TaskIdPath) -> StreamingResponse:
    """The job's record now, then at each change, as `text/event-stream`; closes when final."""
    settings = current_settings()  # the runtime's: the Redis its records live in
    hub = record_events(settings)
    channel = records().channel(task_id)
    # Subscribed before the first read, so no change falls between the read and the subscription.
    subscription = hub.subscribe(channel)
    notices = await subscription.__aenter__()
    try:
        first = await run_in_threadpool(_read, task_id)
    except BaseException:
        await subscription.__aexit__(None, None, None)
        raise
    if first is None:
        await subscription.__aexit__(None, None, None)
        raise HTTPException(404, detail=f"unknown task_id {task_id!r} (never existed or expired)")

    async def stream() -> AsyncIterator[bytes]:
        try:
            task: TaskPublic | None = first
            sent: TaskPublic | None = None
            while True:
                if task is not None and task != sent:
                    yield _event(task)
                    sent = task
                    if task.status.value not in ("PENDING", "RETRY", "STARTED"):
                        return
                try:
                    await asyncio.wait_for(notices.get(), timeout=LIVE_KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                # Notices that arrived meanwhile are covered by this one read.
                while not notices.empty():
                    notices.get_nowait()
                try:
                    task = await run_in_threadpool(_read, task_id)
                except REDIS_ERRORS:
                    yield (
                        b"event: error\ndata: "
                        + orjson.dumps(
                            {"detail": "the job broker (Redis) is unavailable; reconnect later"}
                        )
                        + b"\n\n"
                    )
                    return
        finally:
            await subscription.__aexit__(None, None, None)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)
