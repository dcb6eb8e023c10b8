"""The stores that had no deleting job: consumer feedback, the workflow journal and the file
backend's written messages (OUTBOX_DIR), each deleted past its retention by cleanup_old_jobs."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from domain import cleanup, search
from domain.models import ConsumerFeedback, WorkflowJournalEntry
from domain.platform import audit, journal

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _feedback(engine: Engine, comment: str, *, received: datetime) -> int:
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(ConsumerFeedback)
                .values(
                    lot_id=3001,
                    created_at=received,
                    rating=4,
                    texture=4,
                    taste=4,
                    comment=comment,
                    consumer_email="ancien.client@example.org",
                )
                .returning(ConsumerFeedback.id)
            ).scalar_one()
        )


def _found(engine: Engine, q: str) -> list[int]:
    found = search.search(engine, q, limit=50)["results"]
    return [hit["id"] for hit in found if hit["kind"] == "feedback"]


def test_old_feedback_is_deleted_leaves_the_index_and_keeps_its_audit_rows(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    # Given an indexed comment received four years ago, audited, and a recent one
    engine = unit_fresh_demo()
    old = _feedback(engine, "Texture zygomatique inoubliable", received=NOW - timedelta(days=1500))
    recent = _feedback(engine, "Texture zygomatique encore", received=NOW - timedelta(days=10))
    search.index_changes(engine)
    assert {old, recent} <= set(_found(engine, "zygomatique"))
    processing = audit.Processing(job="send_feedback_ack", purpose="ack", key=f"ack-{old}")
    with Session(engine) as session, session.begin():
        audit.record(session, processing, [audit.feedback(old)])

    # When feedback older than three years is deleted
    with Session(engine) as session:
        deleted = cleanup.delete_old_feedback(session, before=NOW - timedelta(days=3 * 365))

    # Then the old one is gone with its address and comment, the recent one stays
    assert deleted >= 1
    with Session(engine) as session:
        assert session.get(ConsumerFeedback, old) is None
        assert session.get(ConsumerFeedback, recent) is not None
        oldest = session.scalar(select(ConsumerFeedback.created_at).order_by("created_at"))
        assert oldest is not None and oldest.replace(tzinfo=UTC) >= NOW - timedelta(days=3 * 365)
        # and the audit trail still says it was processed (ids, not text)
        trail = audit.read(session, subject=audit.feedback(old))
        assert [entry.job for entry in trail] == ["send_feedback_ack"]
    # and the next incremental index run drops it from the search results
    assert search.index_changes(engine)["deleted"] >= 1
    assert _found(engine, "zygomatique") == [recent]


def test_journaled_workflows_older_than_the_records_are_deleted(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    engine = unit_fresh_demo()
    day = timedelta(days=1)
    for workflow_id, submitted, finished in [
        ("old-finished", NOW - 9 * day, NOW - 9 * day),
        ("old-unfinished", NOW - 8 * day, None),
        ("recent", NOW - day, None),
    ]:
        journal.record_workflow(
            engine, workflow_id=workflow_id, name="w", graph="[]", submitted_at=submitted
        )
        if finished is not None:
            journal.mark_workflows_finished(engine, [workflow_id], at=finished)
    with Session(engine) as session:
        assert journal.delete_old_workflows(session, before=NOW - 7 * day) == 2
        left = session.scalars(select(WorkflowJournalEntry.workflow_id)).all()
    assert left == ["recent"]


def test_written_notifications_older_than_the_outbox_retention_are_deleted(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    (outbox / "sms").mkdir(parents=True)
    old, recent = outbox / "old.eml", outbox / "sms" / "recent.json"
    for path, age in ((old, timedelta(days=91)), (recent, timedelta(days=1))):
        path.write_text("to: jean@example.org")
        stamp = (NOW - age).timestamp()
        os.utime(path, (stamp, stamp))
    assert cleanup.delete_old_outbox_files(outbox, before=NOW - timedelta(days=90)) == 1
    assert not old.exists() and recent.exists()
    assert cleanup.delete_old_outbox_files(tmp_path / "absent", before=NOW) == 0
