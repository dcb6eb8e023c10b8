"""Maintenance jobs on queue `default`: health, aggregates, backup, cleanup, KPIs, broker upkeep,
search indexing."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pendulum
from pydantic import Field

from domain import aggregates, cleanup, kpis
from domain.notify import providers_reachable
from domain.platform import backup, db, journal
from domain.platform.health import disk_space, run_checks, summarize
from runtime import (
    NO_RETRY,
    QUEUES,
    Control,
    Payload,
    RetryPolicy,
    broker,
    chunked_session,
    current_settings,
    engine,
    forward,
    job,
    live_workers,
    progress,
    reconcile,
    records,
    session_scope,
)

logger = logging.getLogger(__name__)

#: Nightly and weekly upkeep: a few retries, minutes apart (a database restart, a full disk).
NIGHTLY = RetryPolicy(max_retries=3, min_backoff_ms=60_000, max_backoff_ms=600_000)


class HealthCheck(Payload):
    """No parameters: every check runs."""


class RefreshAggregates(Payload):
    full: bool = False


def _database() -> str:
    db.ping(engine())
    return f"reachable ({engine().dialect.name})"


def _workers_per_queue() -> str:
    alive: dict[str, int] = dict.fromkeys(QUEUES, 0)
    for worker in live_workers(broker().client):
        for queue in worker.get("queues", []):
            alive[queue] = alive.get(queue, 0) + 1
    missing = [queue for queue, count in alive.items() if count == 0]
    detail = ", ".join(f"{queue}={count}" for queue, count in alive.items())
    if missing:
        raise RuntimeError(f"no live worker for {missing} ({detail})")
    return detail


@job(queue="default", payload=HealthCheck, retry=NO_RETRY, time_limit_ms=60_000, unique="health")
def health_check(payload: HealthCheck) -> dict[str, Any]:
    """Redis, database, disk space, live workers per queue, SMTP and SMS providers."""
    settings = current_settings()
    checks = {
        "redis": lambda: f"ping ok, {broker().client.info('memory')['used_memory_human']} used",
        "database": _database,
        "disk_exports": lambda: disk_space(settings.export_dir),
        "workers": _workers_per_queue,
        "providers": lambda: providers_reachable(settings),
    }
    results = run_checks(
        checks, on_each=lambda done, name: progress(100 * done / len(checks), f"checked {name}")
    )
    return summarize(results)


@job(
    queue="default",
    payload=RefreshAggregates,
    retry=NIGHTLY,
    time_limit_ms=30 * 60_000,
    debounce="refresh-{full}",
    debounce_ms=lambda settings: settings.aggregates_debounce_ms,
)
def refresh_aggregates(payload: RefreshAggregates) -> dict[str, Any]:
    """Daily gavage stats and hourly SQAL stats, incremental unless `full`. Requests within
    AGGREGATES_DEBOUNCE_MS run once, at the window's end (the schedule's runs start at once)."""
    progress(5, "refreshing aggregates")
    with session_scope() as session:
        outcome = aggregates.refresh_aggregates(session, full=payload.full)
    progress(100, "aggregates refreshed")
    return {"status": "success", **outcome}


class Empty(Payload):
    """No parameters."""


class CleanupOldSensorData(Payload):
    retention_days: int | None = Field(default=None, ge=1, le=36_500)


class WeeklyKpis(Payload):
    week_start: date | None = None


def _now() -> datetime:
    return datetime.now(UTC)


@job(
    queue="default",
    payload=Empty,
    retry=NIGHTLY,
    time_limit_ms=60 * 60_000,
    unique="backup",
)
def backup_database(payload: Empty) -> dict[str, Any]:
    """Online backup to BACKUP_DIR, verified by reopening the copy, rotated."""
    settings = current_settings()
    progress(5, "copying the database")
    made = backup.backup_database(
        engine(), settings.backup_dir, keep=settings.backup_keep, now=_now()
    )
    progress(100, f"backup verified: {made.size_bytes} bytes")
    return {"status": "success", **made.as_dict()}


@job(
    priority_class="low",
    priority_range=("low", "normal"),
    queue="default",
    payload=Empty,
    retry=NIGHTLY,
    time_limit_ms=30 * 60_000,
    unique="cleanup-jobs",
)
def cleanup_old_jobs(payload: Empty) -> dict[str, Any]:
    """Job record indexes past retention, expired export files, old outbox rows and written
    notifications, old consumer feedback, journal entries and journaled workflows older than
    the job records (nothing could be resent from them). README "Retention" lists each."""
    settings = current_settings()
    index_entries = records().trim()
    progress(30, f"{index_entries} expired job index entries trimmed")
    outbox_before = _now() - timedelta(days=settings.outbox_retention_days)
    records_before = _now() - timedelta(seconds=settings.job_retention_s)
    with chunked_session() as session:
        files = cleanup.delete_expired_files(session, settings.export_dir, now=_now())
        progress(50, f"{files['files_deleted']} expired files deleted")
        outbox = cleanup.delete_old_outbox(session, before=outbox_before)
        outbox_files = cleanup.delete_old_outbox_files(settings.outbox_dir, before=outbox_before)
        progress(65, f"{outbox} old outbox rows, {outbox_files} written messages deleted")
        feedback = cleanup.delete_old_feedback(
            session, before=_now() - timedelta(days=settings.feedback_retention_days)
        )
        progress(80, f"{feedback} old consumer feedback deleted")
        journaled = journal.delete_old(session, before=records_before)
        workflows = journal.delete_old_workflows(session, before=records_before)
    if feedback:
        request_index_update()  # the deleted comments leave the search index at its next run
    return {
        "status": "success",
        "job_index_entries_trimmed": index_entries,
        **files,
        "outbox_rows_deleted": outbox,
        "outbox_files_deleted": outbox_files,
        "feedback_deleted": feedback,
        "journal_entries_deleted": journaled,
        "journaled_workflows_deleted": workflows,
    }


@job(
    priority_class="low",
    priority_range=("low", "normal"),
    queue="default",
    payload=CleanupOldSensorData,
    retry=NIGHTLY,
    time_limit_ms=60 * 60_000,
    unique="cleanup-sensor",
)
def cleanup_old_sensor_data(payload: CleanupOldSensorData) -> dict[str, Any]:
    """SQAL samples older than the retention (the hourly aggregates keep their summary)."""
    days = payload.retention_days or current_settings().sensor_retention_days
    before = _now() - timedelta(days=days)
    progress(5, f"deleting SQAL samples measured before {before.date()}")
    with chunked_session() as session:
        deleted = cleanup.delete_old_sensor_data(session, before=before)
    return {"status": "success", "retention_days": days, "sqal_samples_deleted": deleted}


@job(
    queue="default",
    payload=WeeklyKpis,
    retry=NIGHTLY,
    time_limit_ms=30 * 60_000,
    unique="kpis-{week_start}",
)
def calculate_weekly_kpis(payload: WeeklyKpis) -> dict[str, Any]:
    """Per site and gaveur KPIs of a week (default: the previous one, Europe/Paris), stored."""
    today = pendulum.now(current_settings().tz).date()
    week_start = payload.week_start or kpis.previous_week(today)
    progress(10, f"computing the week of {week_start}")
    with session_scope() as session:
        outcome = kpis.compute_weekly_kpis(session, week_start=week_start)
    return {"status": "success", **outcome}


@job(
    queue="default",
    payload=Empty,
    retry=NO_RETRY,
    time_limit_ms=60_000,
    unique="broker-maintenance",
    journal=False,
)
def broker_maintenance(payload: Empty) -> dict[str, Any]:
    """Re-queue the messages of dead workers, expire old dead letters, and resend accepted jobs
    that Redis lost (from the database journal), every minute."""
    control = Control(broker(), records())
    recovered = control.recover_dead_workers(QUEUES)
    # Jobs accepted while Redis was down, left by a web process that stopped before sending them.
    recovered |= forward(broker(), records(), engine()).as_dict()
    if not current_settings().journal_enabled:
        return {"status": "success", **recovered}
    reconciled = reconcile(broker(), records(), engine())
    return {"status": "success", **recovered, **reconciled.as_dict()}


# Search index (domain/search). On `default`: runs are short database transactions, and a
# process of their own would cost a worker's memory for a few seconds of work every few minutes.
SEARCH_RETRY = RetryPolicy(max_retries=5, min_backoff_ms=5_000, max_backoff_ms=120_000)


class IndexChanges(Payload):
    budget_ms: int = Field(default=60_000, ge=1_000, le=600_000)


@job(
    queue="default",
    payload=IndexChanges,
    retry=SEARCH_RETRY,
    time_limit_ms=15 * 60_000,
    unique="search-index-changes",
)
def index_changes(payload: IndexChanges) -> dict[str, Any]:
    """Index every change to lots, feedback, anomalies, certificates and files since the last
    run (the log the database triggers keep); safe to run twice at once."""
    from domain import search

    return {
        "status": "success",
        **search.index_changes(engine(), budget_ms=payload.budget_ms, progress=progress),
    }


@job(
    queue="default",
    payload=Empty,
    retry=NIGHTLY,
    time_limit_ms=30 * 60_000,
    unique="search-optimize",
)
def optimize_search_index(payload: Empty) -> dict[str, Any]:
    """Purge stale documents and merge the index (FTS5 optimize; GIN pending list + VACUUM)."""
    from domain import search

    progress(5, "optimizing the search index")
    return {"status": "success", **search.optimize(engine())}


@job(
    queue="default",
    payload=Empty,
    retry=NIGHTLY,
    time_limit_ms=60 * 60_000,
    unique="search-rebuild",
)
def rebuild_search_index(payload: Empty) -> dict[str, Any]:
    """Rebuild the whole index into a new generation and switch to it atomically; searches
    answer from the old one meanwhile."""
    from domain import search

    return {"status": "success", **search.rebuild(engine(), progress=progress)}


def request_index_update() -> None:
    """Ask for an incremental run after a write to indexed data (deduplicated by uniqueness).

    A failed send is only logged: the write is already in the change log, and the clock's
    run every few minutes will index it.
    """
    try:
        index_changes.submit(IndexChanges())
    except Exception as error:  # noqa: BLE001 - the safety net is the scheduled run
        logger.warning("index_changes not sent (the scheduled run will index): %s", error)
