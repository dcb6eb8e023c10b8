"""Enqueue routes of the maintenance family (queue `default`)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

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
from api.schemas import ACCEPTED, Accepted

router = APIRouter(
    responses=ACCEPTED,
    prefix="/api/tasks/maintenance",
    tags=["maintenance"],
    dependencies=[WriterDep],
)


@router.post("/health-check", status_code=202)
def enqueue_health_check() -> Accepted:
    return submit(health_check, HealthCheck(), message="Health check started")


@router.post("/refresh-aggregates", status_code=202)
def enqueue_refresh_aggregates(full: bool = False) -> Accepted:
    return submit(
        refresh_aggregates,
        RefreshAggregates(full=full),
        message="Aggregates refresh started",
        full=full,
    )


@router.post("/backup", status_code=202)
def enqueue_backup() -> Accepted:
    return submit(backup_database, Empty(), message="Database backup started")


@router.post("/cleanup", status_code=202)
def enqueue_cleanup() -> Accepted:
    return submit(cleanup_old_jobs, Empty(), message="Cleanup started")


@router.post("/cleanup-sensor-data", status_code=202)
def enqueue_cleanup_sensor_data(
    retention_days: int | None = Query(default=None, ge=1, le=36_500),
) -> Accepted:
    payload = cleanup_old_sensor_data.validate({"retention_days": retention_days})
    return submit(cleanup_old_sensor_data, payload, message="Sensor data cleanup started")


@router.post("/weekly-kpis", status_code=202)
def enqueue_weekly_kpis(week_start: date | None = None) -> Accepted:
    return submit(
        calculate_weekly_kpis,
        WeeklyKpis(week_start=week_start),
        message="Weekly KPIs started",
        week_start=week_start,
    )


@router.post("/broker-maintenance", status_code=202)
def enqueue_broker_maintenance() -> Accepted:
    return submit(broker_maintenance, Empty(), message="Broker maintenance started")
