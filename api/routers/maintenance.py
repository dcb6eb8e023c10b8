"""Enqueue routes of the maintenance family (queue `default`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from actors.maintenance import HealthCheck, RefreshAggregates, health_check, refresh_aggregates
from api.deps import WriterDep
from api.enqueue import submit
from api.schemas import Submitted

router = APIRouter(prefix="/api/tasks/maintenance", tags=["maintenance"], dependencies=[WriterDep])


@router.post("/health-check", status_code=202)
def enqueue_health_check(response: Response) -> Submitted:
    return submit(health_check, HealthCheck(), response, message="Health check started")


@router.post("/refresh-aggregates", status_code=202)
def enqueue_refresh_aggregates(response: Response, full: bool = False) -> Submitted:
    return submit(
        refresh_aggregates,
        RefreshAggregates(full=full),
        response,
        message="Aggregates refresh started",
        full=full,
    )
