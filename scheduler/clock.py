"""The clock: each pass claims the due ticks of the schedule and sends their jobs, exactly once.

Any number of clocks may run (a PaaS restart overlaps two, an operator starts a second one):
each tick of each entry is claimed in Redis by one atomic compare-and-set on the entry's last
claimed tick, so one clock wins and a tick is never sent twice, including by a clock restarted
inside the minute it already handled. An entry with `catch_up` that missed ticks while no clock
ran gets one run for the newest missed tick; other entries just wait for their next tick.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum

from runtime import REDIS_ERRORS, DuplicateJob, Job
from scheduler import cron
from scheduler.schedule import Entry
from scheduler.state import BEAT_PERIOD_S, LastRun, ScheduleState, entry_key

logger = logging.getLogger("gaveurs.scheduler")


@dataclass(frozen=True)
class Fired:
    entry: str
    tick: pendulum.DateTime
    task_id: str
    kind: str  # on_time | catch_up | duplicate
    missed: int


def scheduler_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Clock:
    """Evaluates the schedule at a given instant; the caller decides how time passes."""

    def __init__(
        self,
        state: ScheduleState,
        entries: tuple[Entry, ...],
        jobs: Mapping[str, Job[Any]],
        *,
        tz: str,
        identity: str | None = None,
    ) -> None:
        self.state = state
        self.tz = tz
        self.identity = identity or scheduler_id()
        self.entries: list[Entry] = []
        self.jobs: dict[str, Job[Any]] = {}
        self.payloads: dict[str, Any] = {}
        self.specs = {entry.name: cron.parse(entry.cron) for entry in entries}
        for entry in entries:
            if not entry.enabled:
                continue
            job = jobs.get(entry.actor)
            if job is None:
                logger.warning(
                    "schedule entry %s names actor %s, which is not registered: skipped",
                    entry.name,
                    entry.actor,
                )
                continue
            self.payloads[entry.name] = job.validate(entry.args)  # bad args fail at start-up
            self.jobs[entry.name] = job
            self.entries.append(entry)
        self._last_beat = 0.0

    def beat(self, now_s: float | None = None, *, force: bool = False) -> None:
        now_s = time.time() if now_s is None else now_s
        if force or now_s - self._last_beat >= BEAT_PERIOD_S / 3:
            self.state.beat(self.identity, now_s)
            self._last_beat = now_s

    def tick(self, now: datetime) -> list[Fired]:
        """Claim and send the runs due at `now`, catch-up runs included; returns those sent here."""
        minute = cron.minute_of(now, self.tz)
        minute_ms = int(minute.timestamp() * 1000)
        previous_minute_ms = minute_ms - 60_000
        last_runs = self.state.last_runs([entry.name for entry in self.entries])
        fired: list[Fired] = []
        for entry in self.entries:
            last = last_runs[entry.name]
            if last is None:
                # First sight of this entry: nothing before this minute counts as missed.
                self.state.initialise(entry.name, previous_minute_ms)
                last_tick_ms = previous_minute_ms
            else:
                last_tick_ms = last.tick_ms
            target, missed = self._due(entry, minute, minute_ms, last_tick_ms)
            if target is None:
                continue
            outcome = self._fire(entry, target, missed, last, minute)
            if outcome is not None:
                fired.append(outcome)
        return fired

    def _due(
        self, entry: Entry, minute: pendulum.DateTime, minute_ms: int, last_tick_ms: int
    ) -> tuple[pendulum.DateTime | None, int]:
        spec = self.specs[entry.name]
        if minute_ms <= last_tick_ms:
            return None, 0
        if not entry.catch_up:
            return (minute, 0) if cron.is_due(spec, minute) else (None, 0)
        last_tick = pendulum.from_timestamp(last_tick_ms / 1000, tz=self.tz)
        ticks = list(cron.ticks_between(spec, last_tick, minute))
        if not ticks:
            return None, 0
        return ticks[-1], len(ticks) - 1

    def _fire(
        self,
        entry: Entry,
        target: pendulum.DateTime,
        missed: int,
        previous: LastRun | None,
        minute: pendulum.DateTime,
    ) -> Fired | None:
        job = self.jobs[entry.name]
        tick_ms = int(target.timestamp() * 1000)
        kind = "on_time" if target == minute else "catch_up"
        options: dict[str, Any] = {
            "scheduled_at": target.isoformat(),
            "schedule_entry": entry.name,
            "client": "scheduler",  # the scheduler is a client too (job records, audit trail)
        }
        now_ms = getattr(job.actor.broker, "now_ms", None)
        if now_ms is not None:
            # Redis time: a worker judges lateness on the same clock, whatever its own says.
            options["sent_at_ms"] = now_ms()
        if entry.late_after_ms is not None:
            options["late_after_ms"] = entry.late_after_ms
        message = job.message(self.payloads[entry.name], **options)
        won = self.state.claim(
            entry.name,
            tick_ms,
            task_id=message.message_id,
            kind=kind,
            fired_at_ms=int(time.time() * 1000),
            missed=missed,
            scheduler=self.identity,
            tick=target.isoformat(),
        )
        if not won:
            return None
        try:
            job.actor.broker.enqueue(message)
        except DuplicateJob as duplicate:
            # The same work is already queued or running (e.g. a manual run): that one counts.
            self.state.client.hset(
                entry_key(entry.name),
                mapping={"task_id": duplicate.existing_task_id, "kind": "duplicate"},
            )
            kind, message_id = "duplicate", duplicate.existing_task_id
        except Exception:
            self.state.restore(entry.name, previous)
            raise
        else:
            message_id = message.message_id
        self.state.record(
            {
                "entry": entry.name,
                "tick": target.isoformat(),
                "task_id": message_id,
                "kind": kind,
                "missed": missed,
                "scheduler": self.identity,
                "sent_at_ms": int(time.time() * 1000),
            }
        )
        logger.info(
            "%s: sent %s for tick %s (%s%s)",
            entry.name,
            message_id,
            target.isoformat(),
            kind,
            f", {missed} earlier missed ticks folded in" if missed else "",
        )
        return Fired(entry.name, target, message_id, kind, missed)


def run_forever(
    clock: Clock,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], object],
    poll_s: float,
    stop: Callable[[], bool],
    after_pass: Callable[[], object] | None = None,
) -> None:
    """Tick every `poll_s` (virtual seconds come from `now`; `sleep` takes real ones), then run
    `after_pass` (the forwarder of jobs deferred while Redis was down)."""
    redis_down = False
    while not stop():
        try:
            clock.beat(force=True)
            clock.tick(now())
            if after_pass is not None:
                after_pass()
            if redis_down:
                logger.warning("Redis answers again")
            redis_down = False
        except REDIS_ERRORS as error:  # Redis away or failing over: one line, keep ticking
            if not redis_down:
                logger.warning("Redis unreachable (%s); retrying at every pass", error)
            redis_down = True
        except Exception:  # a job failing to enqueue: log, keep ticking
            logger.exception("tick failed; retrying at the next pass")
        sleep(poll_s)
