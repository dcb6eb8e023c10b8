"""Every registered job by name: what it takes, and a generic enqueue (what `gaveurs enqueue`
does, over HTTP). Only registered jobs exist here; the family routes stay the documented API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from api.deps import WriterDep
from api.enqueue import submit_async
from api.params import NamePath
from api.schemas import ACCEPTED, Accepted
from domain.errors import NotFound
from runtime import REGISTRY, Job

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
#: Dramatiq's Redis broker refuses delays of a week or more.
MAX_DELAY_MS = 7 * 86_400_000 - 1


def _job(name: str) -> Job[Any]:
    job = REGISTRY.get(name)
    if job is None:
        raise NotFound(f"no job named {name!r}; registered jobs: {', '.join(sorted(REGISTRY))}")
    return job


def _describe(job: Job[Any]) -> dict[str, Any]:
    retry = job.actor.options.get("retry")
    return {
        "name": job.name,
        "queue": job.queue,
        "doc": (job.actor.fn.__doc__ or "").strip(),
        "unique": job.unique,
        "max_retries": getattr(retry, "max_retries", None),
        "time_limit_ms": job.actor.options.get("time_limit"),
        "priority_class": job.priority_class.value,
        "priority_range": [c.value for c in job.priority_range],
        "payload_schema": job.payload.model_json_schema(),
    }


@router.get("")
def list_jobs() -> dict[str, Any]:
    """The jobs the platform can run, with their queue and payload schema."""
    return {"jobs": [_describe(REGISTRY[name]) for name in sorted(REGISTRY)]}


@router.get("/{name}")
def describe_job(name: NamePath) -> dict[str, Any]:
    return _describe(_job(name))


@router.post("/{name}", status_code=202, dependencies=[WriterDep], responses=ACCEPTED)
async def enqueue_job(
    name: NamePath,
    payload: dict[str, Any] = Body(default_factory=dict),  # noqa: B008
    delay_ms: int | None = Query(default=None, ge=0, le=MAX_DELAY_MS),
    priority_class: str | None = Query(
        default=None,
        max_length=20,
        description="critical, high, normal or low (or critique, haute, normale, basse), "
        "within the job's priority_range",
    ),
) -> Accepted:
    """Enqueue a registered job with a JSON payload (validated by the job's payload model),
    optionally to start no sooner than `delay_ms` from now, at a chosen priority class.
    Awaited on the event loop (no database here): api/enqueue.py, submit_async."""
    job = _job(name)
    payload_model = job.validate(payload)
    return await submit_async(
        job,
        payload_model,
        message=f"{name} submitted",
        delay_ms=delay_ms,
        priority_class=priority_class,
    )
