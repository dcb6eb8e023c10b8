"""The schedule table (seed 001's beat schedule plus what operations need), Europe/Paris time.

Each entry is data: which job, when, with which arguments, and two policies.

- `catch_up`: after downtime, a missed run executes once when the clock comes back (once, not
  once per missed tick). Daily, weekly and monthly work catches up; hourly and shorter does not
  (the next tick comes soon and does the same work).
- `late_after_ms`: a scheduled message that waited longer than this in its queue is skipped and
  counted (`gaveurs_schedule_skips_total`); None means it always runs, however late. periodiq
  drops every run older than 30 s; a backlog must not silently drop the nightly backup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scheduler.cron import parse


@dataclass(frozen=True)
class Entry:
    name: str
    actor: str
    cron: str
    args: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    catch_up: bool = False
    late_after_ms: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        parse(self.cron)  # a bad expression fails at import, naming the entry's cron
        if self.late_after_ms is not None and self.late_after_ms <= 0:
            raise ValueError(f"{self.name}: late_after_ms must be positive or None")


SCHEDULE: tuple[Entry, ...] = (
    Entry(
        "refresh-continuous-aggregates-hourly",
        "refresh_aggregates",
        "0 * * * *",
        late_after_ms=50 * 60 * 1000,
        description="daily gavage and hourly SQAL statistics, incremental",
    ),
    Entry(
        "backup-database-daily",
        "backup_database",
        "0 3 * * *",
        catch_up=True,
        description="online backup of the database, rotated and verified",
    ),
    Entry(
        "cleanup-old-tasks-daily",
        "cleanup_old_jobs",
        "0 4 * * *",
        catch_up=True,
        description="old job records, expired export files, old outbox rows",
    ),
    Entry(
        "daily-summary-reports",
        "send_daily_summary_reports",
        "0 18 * * *",
        catch_up=True,
        late_after_ms=4 * 3600 * 1000,
        description="one e-mail per site manager with the day's figures",
    ),
    Entry(
        "weekly-reports-generation",
        "weekly_reports_generation",
        "0 6 * * 1",
        catch_up=True,
        description="site PDF reports for the past week",
    ),
    Entry(
        "weekly-kpis-calculation",
        "calculate_weekly_kpis",
        "0 7 * * 1",
        catch_up=True,
        description="per site and gaveur KPIs of the past week, stored",
    ),
    Entry(
        "monthly-ml-retraining",
        "retrain_all_ml_models",
        "0 2 1 * *",
        catch_up=True,
        description="retrain every ML model on the latest data",
    ),
    Entry(
        "cleanup-old-sensor-data",
        "cleanup_old_sensor_data",
        "0 5 1 * *",
        catch_up=True,
        description="SQAL samples past their retention",
    ),
    Entry(
        "health-check-periodic",
        "health_check",
        "0 */6 * * *",
        late_after_ms=30 * 60 * 1000,
        description="Redis, database, disk, workers per queue, providers",
    ),
    Entry(
        "anomalies-detection-periodic",
        "detect_anomalies",
        "0 */6 * * *",
        late_after_ms=60 * 60 * 1000,
        description="Isolation Forest over lots and feeding records, alerts",
    ),
    Entry(
        "broker-maintenance",
        "broker_maintenance",
        "* * * * *",
        late_after_ms=50_000,
        description="re-queue the messages of dead workers, expire old dead letters",
    ),
    Entry(
        "search-index-changes",
        "index_changes",
        "*/2 * * * *",
        late_after_ms=100_000,
        description="safety net: index changes no write-side request reached (seed 002)",
    ),
    Entry(
        "search-optimize-daily",
        "optimize_search_index",
        "30 1 * * *",
        catch_up=True,
        description="off-peak merge of the search index, stale documents purged (seed 002)",
    ),
)


def entries_by_name(entries: tuple[Entry, ...] = SCHEDULE) -> dict[str, Entry]:
    names = [entry.name for entry in entries]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"duplicate schedule entries {sorted(duplicates)}")
    return {entry.name: entry for entry in entries}
