"""The job journal: a durable copy of every accepted job, to find the ones Redis lost.

Writers batch (a worker or API process writes its accepted and finished jobs a few times a
second); the reconciler reads unfinished entries in keyset order from a cursor. Nothing here
knows about Redis or Dramatiq: bodies are opaque text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Dialect, Engine, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.models import JournalEntry, WorkflowJournalEntry

CHUNK = 1000


@dataclass(frozen=True)
class Accepted:
    task_id: str
    actor: str
    queue: str
    body: str
    accepted_at: datetime
    #: The API client (or "scheduler", "cli") that submitted the job.
    client: str | None = None


class Finished(NamedTuple):
    """A job's end (a tuple: a worker makes one per job, and a frozen dataclass costs 5x)."""

    task_id: str
    actor: str
    queue: str
    outcome: str
    finished_at: datetime


@dataclass(frozen=True)
class Cursor:
    """Where a pass over the unfinished entries stopped: (accepted_at, task_id), exclusive."""

    accepted_at: datetime
    task_id: str


def _insert(engine: Engine) -> Any:
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert


def record_accepted(engine: Engine, entries: Sequence[Accepted]) -> None:
    """Insert entries, ignoring ones already there (a delayed message moved, a resend, or a job
    whose end another process wrote first)."""
    if not entries:
        return
    sql, order, stamp = _accepted_statement(engine.dialect)
    rows: list[Any] = []
    for e in entries:
        row = {
            "task_id": e.task_id,
            "actor": e.actor,
            "queue": e.queue,
            "body": e.body,
            "accepted_at": stamp(e.accepted_at),
            "client": e.client,
        }
        rows.append(row if order is None else tuple(row[name] for name in order))
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, rows)


def record_finished(engine: Engine, entries: Sequence[Finished]) -> None:
    """Mark entries finished; the first outcome wins.

    The worker that ran a job may write its end before the API process writes its acceptance
    (each flushes on its own clock): the end is then inserted as a bodiless entry, which the
    late acceptance leaves alone, so a finished job is never taken for a lost one."""
    if not entries:
        return
    sql, order, stamp = _finished_statement(engine.dialect)
    rows: list[Any] = []
    for e in entries:
        at = stamp(e.finished_at)
        row = {
            "task_id": e.task_id,
            "actor": e.actor,
            "queue": e.queue,
            "body": "",
            "accepted_at": at,
            "finished_at": at,
            "outcome": e.outcome,
        }
        rows.append(row if order is None else tuple(row[name] for name in order))
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, rows)


#: A statement compiled for a dialect: its SQL, the order of its parameters (None: by name) and
#: the conversion of a time to its column's value (on SQLite, the text SQLAlchemy stores and
#: compares). API processes write one accepted row per enqueue and workers one finished row per
#: job: SQLAlchemy's per-row parameter processing (and, for the insert, its compilation per
#: batch) would cost them several times the database's own work.
Compiled = tuple[str, Sequence[str] | None, Callable[[datetime], Any]]


def _compiled(dialect: Dialect, statement: Any, columns: list[str]) -> Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    processor = JournalEntry.__table__.c.accepted_at.type.dialect_impl(dialect).bind_processor(
        dialect
    )
    convert: Callable[[datetime], Any] = processor or (lambda value: value)
    if dialect.name == "sqlite":
        # Its fast twin, used only when it writes exactly the same text.
        samples = [datetime(2026, 3, 29, 1, 59, 59, n, tzinfo=UTC) for n in (0, 7, 999_999)]
        if all(_sqlite_text(at) == convert(at) for at in samples):
            convert = _sqlite_text
    order = compiled.positiontup if dialect.positional else None
    return compiled.string, order, convert


def _sqlite_text(value: datetime) -> str:
    """A time as SQLAlchemy's SQLite DATETIME stores an aware UTCDateTime (UTC, naive, with
    microseconds), by `isoformat` in C: SQLAlchemy's own conversion costs ~5 us a row."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _insert_for(dialect: Dialect) -> Any:
    return (pg_insert if dialect.name == "postgresql" else sqlite_insert)(JournalEntry)


@functools.lru_cache(maxsize=8)
def _accepted_statement(dialect: Dialect) -> Compiled:
    """record_accepted's insert, ignoring an entry already there, compiled once."""
    columns = ["task_id", "actor", "queue", "body", "accepted_at", "client"]
    return _compiled(dialect, _insert_for(dialect).on_conflict_do_nothing(), columns)


@functools.lru_cache(maxsize=8)
def _finished_statement(dialect: Dialect) -> Compiled:
    """record_finished's upsert, compiled once."""
    insert = _insert_for(dialect)
    statement = insert.on_conflict_do_update(
        index_elements=[JournalEntry.task_id],
        set_={"finished_at": insert.excluded.finished_at, "outcome": insert.excluded.outcome},
        where=JournalEntry.finished_at.is_(None),
    )
    columns = ["task_id", "actor", "queue", "body", "accepted_at", "finished_at", "outcome"]
    return _compiled(dialect, statement, columns)


def unfinished(
    session: Session,
    *,
    accepted_after: datetime,
    accepted_before: datetime,
    cursor: Cursor | None,
    limit: int,
) -> list[JournalEntry]:
    """Unfinished entries accepted in the window, oldest first, after `cursor` (deferred ones
    waiting for the forwarder left out)."""
    query = (
        select(JournalEntry)
        .where(JournalEntry.finished_at.is_(None))
        .where(JournalEntry.accepted_at > accepted_after)
        .where(JournalEntry.accepted_at < accepted_before)
        # A deferred job not yet forwarded was never in Redis: the forwarder sends it, in order.
        .where(or_(JournalEntry.deferred_at.is_(None), JournalEntry.forwarded_at.is_not(None)))
    )
    if cursor is not None:
        query = query.where(
            or_(
                JournalEntry.accepted_at > cursor.accepted_at,
                and_(
                    JournalEntry.accepted_at == cursor.accepted_at,
                    JournalEntry.task_id > cursor.task_id,
                ),
            )
        )
    query = query.order_by(JournalEntry.accepted_at, JournalEntry.task_id).limit(limit)
    return list(session.scalars(query))


def delete_old(session: Session, *, before: datetime) -> int:
    """Entries accepted before `before`, finished or not (their records are gone anyway)."""
    deleted = 0
    while True:
        ids = session.scalars(
            select(JournalEntry.task_id).where(JournalEntry.accepted_at < before).limit(CHUNK)
        ).all()
        if not ids:
            return deleted
        session.execute(delete(JournalEntry).where(JournalEntry.task_id.in_(ids)))
        session.commit()
        deleted += len(ids)


# -- workflows ------------------------------------------------------------------------------


def record_workflow(
    engine: Engine, *, workflow_id: str, name: str, graph: str, submitted_at: datetime
) -> None:
    """Keep a submitted workflow's graph (written before Redis gets it; a retried submit with
    the same id leaves the first entry)."""
    statement = _insert(engine)(WorkflowJournalEntry).on_conflict_do_nothing()
    row = {"workflow_id": workflow_id, "name": name, "graph": graph, "submitted_at": submitted_at}
    with Session(engine) as session, session.begin():
        session.execute(statement, [row])


def unfinished_workflows(
    session: Session, *, submitted_after: datetime, submitted_before: datetime, limit: int
) -> list[WorkflowJournalEntry]:
    query = (
        select(WorkflowJournalEntry)
        .where(WorkflowJournalEntry.finished_at.is_(None))
        .where(WorkflowJournalEntry.submitted_at > submitted_after)
        .where(WorkflowJournalEntry.submitted_at < submitted_before)
        .order_by(WorkflowJournalEntry.submitted_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_workflows_finished(engine: Engine, workflow_ids: Sequence[str], *, at: datetime) -> None:
    if not workflow_ids:
        return
    with Session(engine) as session, session.begin():
        session.execute(
            update(WorkflowJournalEntry)
            .where(WorkflowJournalEntry.workflow_id.in_(workflow_ids))
            .values(finished_at=at)
        )


def delete_old_workflows(session: Session, *, before: datetime) -> int:
    """Workflows submitted before `before`, finished or not: past the job records' retention
    Redis holds nothing of them that a rebuild could complete, and their steps' messages go."""
    deleted = 0
    while True:
        ids = session.scalars(
            select(WorkflowJournalEntry.workflow_id)
            .where(WorkflowJournalEntry.submitted_at < before)
            .limit(CHUNK)
        ).all()
        if not ids:
            return deleted
        session.execute(
            delete(WorkflowJournalEntry).where(WorkflowJournalEntry.workflow_id.in_(ids))
        )
        session.commit()
        deleted += len(ids)


def outcomes(session: Session, task_ids: Sequence[str]) -> dict[str, str]:
    """The journaled end (SUCCESS, FAILURE, REVOKED...) of those jobs that have finished."""
    found: dict[str, str] = {}
    for start in range(0, len(task_ids), CHUNK):
        rows = session.execute(
            select(JournalEntry.task_id, JournalEntry.outcome)
            .where(JournalEntry.task_id.in_(task_ids[start : start + CHUNK]))
            .where(JournalEntry.finished_at.is_not(None))
        )
        found.update({task_id: outcome for task_id, outcome in rows if outcome})
    return found
