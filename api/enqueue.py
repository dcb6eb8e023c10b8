"""The one way API routes enqueue: validate, send, answer 202 with Location and status_url."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Response, status
from pydantic import BaseModel

from actors.jobs import Job
from api.idempotency import current_key
from api.metrics import ENQUEUE_SECONDS, ENQUEUED
from api.schemas import Submitted
from domain.settings import get_settings


def submit(
    job: Job[Any],
    payload: BaseModel,
    response: Response,
    *,
    message: str,
    delay_ms: int | None = None,
    **echo: Any,
) -> Submitted:
    started = time.perf_counter()
    outcome = job.submit(
        payload,
        delay_ms=delay_ms,
        idempotency_key=current_key.get(),
        idempotency_ttl_s=get_settings().idempotency_ttl_s,
    )
    ENQUEUE_SECONDS.labels(job.name).observe(time.perf_counter() - started)
    ENQUEUED.labels(job.name, "duplicate" if outcome.duplicate else "accepted").inc()
    status_url = f"/api/tasks/status/{outcome.task_id}"
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = status_url
    return Submitted(
        task_id=outcome.task_id,
        task_name=job.name,
        queue=job.queue,
        message=(
            "already accepted (same Idempotency-Key, or the same job is queued or running); "
            "returning that task"
            if outcome.duplicate
            else message
        ),
        status_url=status_url,
        duplicate=outcome.duplicate,
        **echo,
    )
