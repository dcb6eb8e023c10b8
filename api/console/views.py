"""What each console page shows, read from the runtime's own stores (job records, Control,
live workers, the schedule state): one function per page, used for the page and for the
fragment the page polls."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import HTTPException

from api.console import charts
from api.console.alerts import prometheus_alerts
from api.console.jobs_query import job_page
from domain.platform.settings import Settings
from runtime import (
    QUEUES,
    REGISTRY,
    Control,
    Minute,
    State,
    gone_workers,
    live_workers,
    merged_durations,
    percentile_ms,
    recent_minutes,
    records,
)
from scheduler.state import ScheduleState
from scheduler.status import schedule_status

PAGE_SIZE = 50
DEAD_LETTERS_SHOWN = 20
#: The charts' span: the per-minute counters of the last hour (one pipelined read of 60 hashes).
CHART_MINUTES = 60
#: The workers page lists the worker processes gone in the last hour.
GONE_SHOWN_S = 3600


def overview(control: Control, settings: Settings) -> dict[str, Any]:
    counts = control.records.counts()
    queues = control.queue_stats(QUEUES)
    alive = ScheduleState(control.client).alive()
    return {
        "counts": {state.value: n for state, n in counts.items()},
        "queues": queues,
        "workers": len(live_workers(control.client)),
        "schedulers": len(alive),
        "totals": {
            "ready": sum(q.ready for q in queues),
            "delayed": sum(q.delayed for q in queues),
            "in_flight": sum(q.in_flight for q in queues),
            "dead_letters": sum(q.dead_letters for q in queues),
        },
        **activity(recent_minutes(control.client, minutes=CHART_MINUTES)),
        "alerts": prometheus_alerts(settings.prometheus_url),
    }


def activity(minutes: list[Minute]) -> dict[str, Any]:
    """The overview's charts: attempts per minute by outcome, p95 duration, rate per queue."""
    p95 = percentile_ms(merged_durations(minutes), 95)
    return {
        "outcomes_chart": charts.outcomes_chart(minutes),
        "outcome_colours": charts.OUTCOME_COLOURS,
        "p95_chart": charts.line_chart(
            [None if (v := m.p95_ms()) is None else v / 1000 for m in minutes],
            label="p95 attempt duration per minute",
            unit="s",
        ),
        "p95_s": None if p95 is None else p95 / 1000,
        "queue_rates": queue_rates(minutes),
        "job_durations": job_durations(minutes),
    }


def job_durations(minutes: list[Minute]) -> list[tuple[str, int, float | None]]:
    """Per job name over the minutes: (name, attempts timed, p95 in ms), slowest first."""
    names = {name for minute in minutes for name in minute.job_durations}
    rows = []
    for name in names:
        buckets = merged_durations(minutes, job=name)
        rows.append((name, sum(buckets.values()), percentile_ms(buckets, 95)))
    return sorted(rows, key=lambda row: (-(row[2] or 0), row[0]))


def queue_rates(minutes: list[Minute]) -> dict[str, charts.Chart]:
    return {
        queue: charts.sparkline(
            [m.queues.get(queue, 0) for m in minutes], label=f"{queue}: attempts ended per minute"
        )
        for queue in QUEUES
    }


def jobs(
    control: Control,
    *,
    state: str = "",
    queue: str = "",
    name: str = "",
    search: str = "",
    client: str = "",
    position: int = 0,
) -> dict[str, Any]:
    if state and state not in State.__members__:
        raise HTTPException(422, detail=f"unknown state {state!r}; states are {list(State)}")
    if queue and queue not in QUEUES:
        raise HTTPException(422, detail=f"unknown queue {queue!r}; queues are {list(QUEUES)}")
    filters = {"state": state, "queue": queue, "name": name, "search": search, "client": client}
    search = search.strip()
    exact = control.records.get(search) if search else None
    if exact is not None:
        # A task id: that job alone, whatever the other filters say.
        return {"page": None, "jobs": [exact], "filters": filters, "position": 0, **_choices()}
    page = job_page(
        control.records,
        state=State(state) if state else None,
        queue=queue or None,
        name=name or None,
        args_text=search or None,
        client=client.strip() or None,
        position=position,
        limit=PAGE_SIZE,
    )
    return {"page": page, "jobs": page.jobs, "filters": filters, "position": position, **_choices()}


def _choices() -> dict[str, Any]:
    states = [s.value for s in State]
    return {"states": states, "queue_names": QUEUES, "job_names": sorted(REGISTRY)}


def job(control: Control, task_id: str) -> dict[str, Any]:
    record = control.records.get(task_id)
    if record is None:
        raise HTTPException(404, detail=f"unknown task_id {task_id!r} (never existed or expired)")
    declared = REGISTRY.get(record.task_name)
    redacted = masked(record.task_name, record.args)
    files = []
    if isinstance(record.result, dict):
        files = [
            value
            for key, value in record.result.items()
            # Produced files are referenced as `pdf_url`, `file_url`... (README "Exports").
            if isinstance(value, str) and key.endswith("url") and value.startswith("/exports/")
        ]
    dead_letter = record.state == State.FAILURE and record.dead_letter_id is not None
    return {
        "job": record,
        "files": files,
        "can_cancel": record.active,
        "can_redrive": dead_letter,
        "can_enqueue_again": declared is not None and not redacted,
        "redacted": redacted,
        "now_ms": int(time.time() * 1000),
    }


def masked(task_name: str, args: dict[str, Any]) -> bool:
    """Whether a record's arguments hold masked values: the fields its job declares in
    `redact=`, or a secret-looking field masked at any depth (README "Security")."""
    declared = REGISTRY.get(task_name)
    if declared is not None and declared.actor.options.get("redact"):
        return True
    return "***" in json.dumps(args, default=str)


def queues(control: Control) -> dict[str, Any]:
    stats = control.queue_stats(QUEUES)
    letters = {}
    for queue in stats:
        if queue.dead_letters:
            total, rows = control.dead_letters(queue.name, offset=0, limit=DEAD_LETTERS_SHOWN)
            letters[queue.name] = (total, rows)
    rates = queue_rates(recent_minutes(control.client, minutes=CHART_MINUTES))
    return {"queues": stats, "dead_letters": letters, "rates": rates}


def workers(control: Control) -> dict[str, Any]:
    rows = live_workers(control.client)
    now_ms = int(time.time() * 1000)
    current = control.records.list(states=[State.STARTED], limit=200)
    running: dict[str, list[str]] = {}
    for record in current:
        if record.worker:
            # Records name the thread (host:pid:thread); heartbeats the process (host:pid).
            process = record.worker.rsplit(":", 1)[0]
            running.setdefault(process, []).append(record.task_id)
    gone = gone_workers(control.client, within_s=GONE_SHOWN_S)
    return {"workers": rows, "now_ms": now_ms, "running": running, "gone": gone}


def schedules(control: Control, settings: Settings) -> dict[str, Any]:
    state = ScheduleState(control.client)
    return {
        "entries": schedule_status(state, records(), tz=settings.tz),
        "alive": state.alive(),
        "timezone": settings.tz,
    }
