"""Each schedule entry with its next run and its last run (time, task_id, outcome)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pendulum

from runtime import REGISTRY, JobRecords
from scheduler import cron
from scheduler.schedule import SCHEDULE, Entry
from scheduler.state import ScheduleState


@dataclass(frozen=True)
class EntryStatus:
    name: str
    actor: str
    cron: str
    args: dict[str, Any]
    enabled: bool
    registered: bool
    catch_up: bool
    late_after_ms: int | None
    description: str
    next_run: str | None
    last_run: dict[str, Any] | None
    skips: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def schedule_status(
    state: ScheduleState,
    records: JobRecords,
    *,
    tz: str,
    now: datetime | None = None,
    entries: tuple[Entry, ...] = SCHEDULE,
) -> list[EntryStatus]:
    now = now or pendulum.now(tz)
    minute = cron.minute_of(now, tz)
    last_runs = state.last_runs([entry.name for entry in entries])
    task_ids = [run.task_id for run in last_runs.values() if run and run.task_id]
    jobs = {record.task_id: record for record in records.get_many(task_ids)}
    skips = state.skips()
    rows = []
    for entry in entries:
        run = last_runs[entry.name]
        last: dict[str, Any] | None = None
        if run is not None and run.task_id:
            record = jobs.get(run.task_id)
            outcome = run.outcome or (record.state.value if record else "expired")
            last = {
                "tick": pendulum.from_timestamp(run.tick_ms / 1000, tz=tz).isoformat(),
                "sent_at": (
                    pendulum.from_timestamp(run.fired_at_ms / 1000, tz=tz).isoformat()
                    if run.fired_at_ms
                    else None
                ),
                "task_id": run.task_id,
                "kind": run.kind,
                "missed_ticks_folded_in": run.missed,
                "outcome": outcome,
                "scheduler": run.scheduler,
            }
        rows.append(
            EntryStatus(
                name=entry.name,
                actor=entry.actor,
                cron=entry.cron,
                args=entry.args,
                enabled=entry.enabled,
                registered=entry.actor in REGISTRY,
                catch_up=entry.catch_up,
                late_after_ms=entry.late_after_ms,
                description=entry.description,
                next_run=(
                    cron.next_tick(cron.parse(entry.cron), minute).isoformat()
                    if entry.enabled
                    else None
                ),
                last_run=last,
                skips=skips.get(entry.name, 0),
            )
        )
    return rows
