"""Enqueue routes of the maintenance family (queue `default`)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query, Response

from actors.maintenance import (
    Empty,
    HealthCheck,
    RefreshAggregates,
    WeeklyKpis,
    backup_database,
    broker_maintenance,
    calculate_weekly_kpis,
    cleanup_old_jobs,
    cleanup_old_sensor_data,
    health_check,
    refresh_aggregates,
)
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


@router.post("/backup", status_code=202)
def enqueue_backup(response: Response) -> Submitted:
    return submit(backup_database, Empty(), response, message="Database backup started")


@router.post("/cleanup", status_code=202)
def enqueue_cleanup(response: Response) -> Submitted:
    return submit(cleanup_old_jobs, Empty(), response, message="Cleanup started")


@router.post("/cleanup-sensor-data", status_code=202)
def enqueue_cleanup_sensor_data(
    response: Response, retention_days: int | None = Query(default=None, ge=1, le=36_500)
) -> Submitted:
    payload = cleanup_old_sensor_data.validate({"retention_days": retention_days})
    return submit(cleanup_old_sensor_data, payload, response, message="Sensor data cleanup started")


@router.post("/weekly-kpis", status_code=202)
def enqueue_weekly_kpis(response: Response, week_start: date | None = None) -> Submitted:
    return submit(
        calculate_weekly_kpis,
        WeeklyKpis(week_start=week_start),
        response,
        message="Weekly KPIs started",
        week_start=week_start,
    )


@router.post("/broker-maintenance", status_code=202)
def enqueue_broker_maintenance(response: Response) -> Submitted:
    return submit(broker_maintenance, Empty(), response, message="Broker maintenance started")
