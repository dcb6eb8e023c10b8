"""The schedule table, Europe/Paris time. Entries name actors; the clock wires them to periodiq."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    actor: str
    cron: str
    enabled: bool = True


#: Only the families that exist are scheduled; the full table of seed 001 arrives with the
#: scheduler issue (backups, cleanup, summaries, reports, KPIs, retraining, retention).
SCHEDULE: tuple[Entry, ...] = (
    Entry("refresh-continuous-aggregates-hourly", "refresh_aggregates", "0 * * * *"),
    Entry("health-check-periodic", "health_check", "0 */6 * * *"),
)
