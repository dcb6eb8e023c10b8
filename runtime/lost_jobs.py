"""Finds accepted jobs that Redis lost, from the database journal, and sends them again.

Run by broker maintenance every minute. Each run walks the unfinished journal entries from a
cursor kept in Redis, for a bounded number of entries: an entry whose job record is gone from
Redis while the journal says it never finished was lost (Redis restarted without persistence,
or lost its last second of writes). Its message is sent again with the same task id. When Redis
lost everything the cursor is gone too, so the walk starts over from the oldest entry.
A lost job this process does not declare (a worker of another release) is left for one that
does: sent from here it would travel without its record, and be taken for lost again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.platform import journal
from runtime.job_records import JobRecords
from runtime.middleware.uniqueness import DuplicateJob

logger = logging.getLogger("gaveurs.reconcile")
CURSOR_KEY = "gaveurs:journal:cursor"
#: Total jobs re-sent from the journal (the exporter publishes it; an alert watches it).
RECOVERED_KEY = "gaveurs:journal:recovered"
#: Entries younger than this are not judged yet (a resend must not race a slow first enqueue).
GRACE_S = 5
BATCH = 1000
#: Unfinished workflows looked at per run (oldest first; finished ones leave the list).
WORKFLOW_BATCH = 500


@dataclass
class Reconciliation:
    checked: int = 0
    lost: int = 0
    resent: int = 0
    superseded: int = 0
    #: Lost jobs left for a process that declares their job.
    undeclared: int = 0
    lost_task_ids: list[str] = field(default_factory=list)
    pass_complete: bool = False
    workflows_restored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "journal_checked": self.checked,
            "journal_lost": self.lost,
            "journal_resent": self.resent,
            "journal_superseded": self.superseded,
            "journal_left_undeclared": self.undeclared,
            "journal_lost_task_ids": self.lost_task_ids[:20],
            "journal_pass_complete": self.pass_complete,
            "journal_workflows_restored": self.workflows_restored[:20],
        }


def _load_cursor(broker: RedisBroker) -> journal.Cursor | None:
    raw = broker.client.get(CURSOR_KEY)
    if not raw:
        return None
    at_ms, task_id = raw.decode().split("|", 1)
    return journal.Cursor(datetime.fromtimestamp(int(at_ms) / 1000, tz=UTC), task_id)


def _save_cursor(broker: RedisBroker, cursor: journal.Cursor | None) -> None:
    if cursor is None:
        broker.client.delete(CURSOR_KEY)
    else:
        at_ms = int(cursor.accepted_at.timestamp() * 1000)
        broker.client.set(CURSOR_KEY, f"{at_ms}|{cursor.task_id}")


def reconcile(
    broker: RedisBroker,
    records: JobRecords,
    engine: Engine,
    *,
    max_entries: int = 20_000,
    budget_s: float = 20.0,
    now: datetime | None = None,
) -> Reconciliation:
    now = now or datetime.now(UTC)
    outcome = Reconciliation()
    cursor = _load_cursor(broker)
    started = time.monotonic()
    window_start = now - timedelta(seconds=records.retention_s) + timedelta(hours=1)
    while outcome.checked < max_entries and time.monotonic() - started < budget_s:
        with Session(engine) as session:
            entries = journal.unfinished(
                session,
                accepted_after=window_start,
                accepted_before=now - timedelta(seconds=GRACE_S),
                cursor=cursor,
                limit=BATCH,
            )
        if not entries:
            cursor = None
            outcome.pass_complete = True
            break
        pipe = broker.client.pipeline(transaction=False)
        for entry in entries:
            pipe.exists(records.key(entry.task_id))
        for entry, exists in zip(entries, pipe.execute(), strict=True):
            if not exists:
                _resend(broker, entry, outcome)
        outcome.checked += len(entries)
        cursor = journal.Cursor(entries[-1].accepted_at, entries[-1].task_id)
    _save_cursor(broker, cursor)
    outcome.workflows_restored = reconcile_workflows(broker, records, engine, now=now)
    if outcome.undeclared:
        logger.warning(
            "%d lost jobs are of jobs this process does not declare (another release?): left "
            "for a process that does",
            outcome.undeclared,
        )
    if outcome.resent:
        broker.client.incrby(RECOVERED_KEY, outcome.resent)
        logger.warning(
            "%d accepted jobs had vanished from Redis; re-sent from the journal: %s",
            outcome.resent,
            ", ".join(outcome.lost_task_ids[:20]),
        )
    return outcome


def _resend(broker: RedisBroker, entry: Any, outcome: Reconciliation) -> None:
    if entry.actor not in broker.actors:
        outcome.undeclared += 1
        return
    outcome.lost += 1
    outcome.lost_task_ids.append(entry.task_id)
    try:
        message: dramatiq.Message[Any] = dramatiq.Message.decode(entry.body.encode())
    except Exception as error:  # a body this version cannot read: report it, do not loop on it
        logger.error("journal entry %s cannot be decoded: %s", entry.task_id, error)
        return
    options = {k: v for k, v in message.options.items() if k not in ("eta", "redis_message_id")}
    options["recovered_from_journal"] = True
    try:
        broker.enqueue(dataclasses.replace(message, queue_name=entry.queue, options=options))
    except DuplicateJob:
        # The same work was submitted again since and is active: that job does it.
        outcome.superseded += 1
        return
    outcome.resent += 1


def reconcile_workflows(
    broker: RedisBroker, records: JobRecords, engine: Engine, *, now: datetime
) -> list[str]:
    """Rebuild the journaled, unfinished workflows whose state Redis lost; mark the ones that
    ended as finished in the journal. Returns the ids rebuilt."""
    from runtime.flows import Workflows

    window_start = now - timedelta(seconds=records.retention_s) + timedelta(hours=1)
    with Session(engine) as session:
        entries = journal.unfinished_workflows(
            session,
            submitted_after=window_start,
            submitted_before=now - timedelta(seconds=GRACE_S),
            limit=WORKFLOW_BATCH,
        )
    if not entries:
        return []
    store = Workflows(
        broker.client,
        records=records,
        namespace=broker.namespace,
        max_message_bytes=getattr(broker, "max_message_bytes", 1 << 30),
    )
    pipe = broker.client.pipeline(transaction=False)
    for entry in entries:
        pipe.hmget(store.key(entry.workflow_id), "state", "total", "finished")
    ended, restored = [], []
    for entry, (state, total, finished) in zip(entries, pipe.execute(), strict=True):
        if state is None:
            graph = json.loads(entry.graph)
            # 4 arguments per step after policy and name; the 4th is its spec (task id inside).
            steps = {graph[i]: json.loads(graph[i + 3])["task"] for i in range(2, len(graph), 4)}
            with Session(engine) as session:
                ends = journal.outcomes(session, list(steps.values()))
            done = {name: ends[task_id] for name, task_id in steps.items() if task_id in ends}
            if store.restore(entry.workflow_id, graph, done):
                restored.append(entry.workflow_id)
        elif state in (b"SUCCESS", b"REVOKED") or int(finished) >= int(total):
            ended.append(entry.workflow_id)
    journal.mark_workflows_finished(engine, ended, at=now)
    if restored:
        logger.warning(
            "%d workflows had vanished from Redis; rebuilt from the journal: %s",
            len(restored),
            ", ".join(restored[:20]),
        )
    return restored
