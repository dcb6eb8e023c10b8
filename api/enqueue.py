"""The one way API routes enqueue: validate, send, answer 202 with Location and status_url.

The answer is an `Accepted` response built here: FastAPI would otherwise dump, re-validate and
re-serialize the `SubmittedPublic` model on every enqueue (a tenth of an enqueue's time). Routers
document it with `ACCEPTED` (the 202 schema is `SubmittedPublic`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from api.callbacks import current_callback
from api.idempotency import current_key
from api.metrics import enqueue_seconds, enqueued
from api.schemas import Accepted, SubmittedPublic
from domain.platform.settings import get_settings
from runtime import Job, Submitted, async_outbox, outbox

#: What a deferred job's 202 says: accepted, waiting in the database for Redis to come back.
DEFERRED = {"status": "PENDING", "queued": "deferred"}


DUPLICATE_NOTE = (
    "already accepted (same Idempotency-Key, or the same job is queued or running); "
    "returning that task"
)
CACHED_NOTE = "answered from the finished run on the same data (result cache); nothing queued"


def _cached(outcome: Submitted) -> dict[str, Any]:
    """What an answer from the result cache adds: the finished run's state and result."""
    return {"status": "SUCCESS", "cached": True, "result": outcome.result}


def submit(
    job: Job[Any],
    payload: BaseModel,
    *,
    message: str,
    delay_ms: int | None = None,
    priority_class: str | None = None,
    echo_task: Callable[[str], dict[str, Any]] | None = None,
    **echo: Any,
) -> Accepted:
    """`echo_task` adds fields computed from the task id (a starter job's workflow id)."""
    started = time.perf_counter()
    # Redis first; while Redis is unreachable the job is kept in the database journal and sent
    # when Redis is back (runtime/deferred.py), answered "queued": "deferred".
    outcome = outbox().submit(
        job, payload, delay_ms=delay_ms, priority_class=priority_class, **_request_options()
    )
    if echo_task is not None:
        echo = {**echo, **echo_task(outcome.task_id)}
    return _accepted(job, outcome, started=started, message=message, echo=echo)


async def submit_async(
    job: Job[Any],
    payload: BaseModel,
    *,
    message: str,
    delay_ms: int | None = None,
    priority_class: str | None = None,
    **echo: Any,
) -> Accepted:
    """`submit` for `async def` routes that touch nothing else blocking (no database): the
    enqueue is awaited on the event loop (runtime/async_enqueue.py), same record, same answer."""
    started = time.perf_counter()
    outcome = await async_outbox().submit(
        job, payload, delay_ms=delay_ms, priority_class=priority_class, **_request_options()
    )
    return _accepted(job, outcome, started=started, message=message, echo=echo)


def _request_options() -> dict[str, Any]:
    return {
        "idempotency_key": current_key.get(),
        "idempotency_ttl_s": get_settings().idempotency_ttl_s,
        "callback_url": current_callback.get(),
    }


def _accepted(
    job: Job[Any], outcome: Submitted, *, started: float, message: str, echo: dict[str, Any]
) -> Accepted:
    enqueue_seconds(job.name).observe(time.perf_counter() - started)
    if outcome.cached:
        kind, note = "cached", CACHED_NOTE
    elif outcome.duplicate:
        kind, note = "duplicate", DUPLICATE_NOTE
    else:
        kind, note = ("deferred" if outcome.deferred else "accepted"), message
    enqueued(job.name, kind).inc()
    status_url = f"/api/tasks/status/{outcome.task_id}"
    fields = {
        "task_id": outcome.task_id,
        "task_name": job.name,
        "queue": job.queue,
        "message": note,
        "status_url": status_url,
        "duplicate": outcome.duplicate,
        **(DEFERRED if outcome.deferred else {}),
    }
    if not outcome.cached and _plain(echo):
        return Accepted.of(_BODY_DEFAULTS | fields | echo, status_url=status_url)
    return Accepted(
        SubmittedPublic(**fields, **(_cached(outcome) if outcome.cached else {}), **echo)
    )


#: SubmittedPublic's fields with their defaults, in its order: the body of a plain 202 without
#: the model, as the model would serialize it (tests/api/test_accepted.py).
_BODY_DEFAULTS = {name: field.default for name, field in SubmittedPublic.model_fields.items()}
_SCALARS = (str, int, float, bool, type(None))


def _plain(echo: dict[str, Any]) -> bool:
    """Echo fields the model would serialize as they are: JSON scalars, none of its own names."""
    return all(type(value) in _SCALARS for value in echo.values()) and not (
        echo.keys() & _BODY_DEFAULTS.keys()
    )
