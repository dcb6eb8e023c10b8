"""Maintenance jobs on queue `default`: health check and aggregates refresh."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from actors.broker import broker
from actors.jobs import QUEUES, job, progress
from actors.middleware.heartbeat import live_workers
from actors.policy import NO_RETRY, RetryPolicy
from actors.resources import engine, session_scope
from domain import aggregates, db
from domain.health import disk_space, run_checks, summarize
from domain.settings import get_settings


class HealthCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefreshAggregates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full: bool = False


def _database() -> str:
    db.ping(engine())
    return f"reachable ({engine().dialect.name})"


def _workers_per_queue() -> str:
    alive: dict[str, int] = dict.fromkeys(QUEUES, 0)
    for worker in live_workers(broker.client):
        for queue in worker.get("queues", []):
            alive[queue] = alive.get(queue, 0) + 1
    missing = [queue for queue, count in alive.items() if count == 0]
    detail = ", ".join(f"{queue}={count}" for queue, count in alive.items())
    if missing:
        raise RuntimeError(f"no live worker for {missing} ({detail})")
    return detail


@job(queue="default", payload=HealthCheck, retry=NO_RETRY, time_limit_ms=60_000, unique="health")
def health_check(payload: HealthCheck) -> dict[str, Any]:
    """Redis, database, disk space and live workers per queue."""
    settings = get_settings()
    checks = {
        "redis": lambda: f"ping ok, {broker.client.info('memory')['used_memory_human']} used",
        "database": _database,
        "disk_exports": lambda: disk_space(settings.export_dir),
        "workers": _workers_per_queue,
    }
    results = run_checks(
        checks, on_each=lambda done, name: progress(100 * done / len(checks), f"checked {name}")
    )
    return summarize(results)


@job(
    queue="default",
    payload=RefreshAggregates,
    retry=RetryPolicy(max_retries=3, min_backoff_ms=60_000, max_backoff_ms=600_000),
    time_limit_ms=30 * 60_000,
    unique="refresh-{full}",
)
def refresh_aggregates(payload: RefreshAggregates) -> dict[str, Any]:
    """Daily gavage stats and hourly SQAL stats, incremental unless `full`."""
    progress(5, "refreshing aggregates")
    with session_scope() as session:
        outcome = aggregates.refresh_aggregates(session, full=payload.full)
    progress(100, "aggregates refreshed")
    return {"status": "success", **outcome}
