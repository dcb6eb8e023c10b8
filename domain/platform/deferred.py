"""Store and forward: jobs accepted while Redis is unreachable, kept in the job journal.

A deferred job is a journal entry with `deferred_at` set and no `forwarded_at`. The database
holds what Redis would while it is away: uniqueness keys (a partial unique index over pending
entries) and Idempotency-Keys (the task id derived from the key is the primary key). The
forwarder reads pending entries in acceptance order and marks them forwarded once sent.
Bodies stay opaque text here: nothing knows about Redis or Dramatiq.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.errors import TransientError
from domain.models import JournalEntry


class DeferredFull(TransientError):
    """DEFERRED_MAX_JOBS jobs are already waiting for Redis to come back."""


@dataclass(frozen=True)
class Deferral:
    task_id: str
    actor: str
    queue: str
    body: str
    unique_key: str | None = None
    #: "claim-key fingerprint" of the request's Idempotency-Key, for the forwarder to claim.
    idempotency: str | None = None
    delay_ms: int | None = None
    #: The API client (or "scheduler", "cli") that submitted the job.
    client: str | None = None


@dataclass(frozen=True)
class Held:
    """The entry that already holds a deferral's task id or uniqueness key."""

    task_id: str
    idempotency: str | None
    pending: bool


def _pending() -> ColumnElement[bool]:
    return and_(JournalEntry.deferred_at.is_not(None), JournalEntry.forwarded_at.is_(None))


def count_pending(session: Session) -> int:
    count = session.scalar(select(func.count()).select_from(JournalEntry).where(_pending()))
    return int(count or 0)


def defer(engine: Engine, deferral: Deferral, *, max_jobs: int) -> Held | None:
    """Store the job; None when stored, else the entry that holds its task id or uniqueness key
    (the caller answers with that job, as Redis would for a duplicate)."""
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            # Checked in the inserting transaction; two processes at the bound at the same
            # instant can pass it together, so the bound may be overshot by a few entries.
            if count_pending(session) >= max_jobs:
                raise DeferredFull(
                    f"{max_jobs} jobs are already waiting for the job broker (Redis) to come "
                    "back (DEFERRED_MAX_JOBS); retry in a few seconds"
                )
            session.add(
                JournalEntry(
                    task_id=deferral.task_id,
                    actor=deferral.actor,
                    queue=deferral.queue,
                    body=deferral.body,
                    accepted_at=now,
                    deferred_at=now,
                    unique_key=deferral.unique_key,
                    idempotency=deferral.idempotency,
                    delay_ms=deferral.delay_ms,
                    client=deferral.client,
                )
            )
    except IntegrityError:
        held = holder(engine, deferral)
        if held is None:  # the holder finished between the insert and this read: try again
            return defer(engine, deferral, max_jobs=max_jobs)
        return held
    return None


def holder(engine: Engine, deferral: Deferral) -> Held | None:
    with Session(engine) as session:
        entry = session.get(JournalEntry, deferral.task_id)
        if entry is None and deferral.unique_key is not None:
            entry = session.scalars(
                select(JournalEntry).where(
                    JournalEntry.unique_key == deferral.unique_key, _pending()
                )
            ).first()
        if entry is None:
            return None
        return Held(
            entry.task_id,
            entry.idempotency,
            pending=entry.deferred_at is not None and entry.forwarded_at is None,
        )


def pending(session: Session, *, limit: int) -> list[JournalEntry]:
    """Deferred entries not yet forwarded, in acceptance order."""
    query = (
        select(JournalEntry)
        .where(_pending())
        .order_by(JournalEntry.accepted_at, JournalEntry.task_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_forwarded(
    engine: Engine, task_ids: Sequence[str], *, superseded: Mapping[str, str] | None = None
) -> None:
    """Mark entries sent; `superseded` maps the ones Redis refused as duplicates to the active
    job that does the same work (it was accepted directly once Redis was back)."""
    if not task_ids:
        return
    now = datetime.now(UTC)
    superseded = superseded or {}
    with Session(engine) as session, session.begin():
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.task_id.in_([t for t in task_ids if t not in superseded]))
            .values(forwarded_at=now)
        )
        for task_id, by in superseded.items():
            session.execute(
                update(JournalEntry)
                .where(JournalEntry.task_id == task_id)
                .values(forwarded_at=now, superseded_by=by, finished_at=now, outcome="REVOKED")
            )


def lookup(engine: Engine, task_id: str) -> JournalEntry | None:
    """The journal entry of a deferred job (pending or forwarded), for status reads."""
    with Session(engine) as session:
        entry = session.get(JournalEntry, task_id)
        if entry is None or entry.deferred_at is None:
            return None
        session.expunge(entry)
        return entry
