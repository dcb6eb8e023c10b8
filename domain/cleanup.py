"""Cleanup of what outlives its use: expired export files, old outbox rows and written
notifications, old consumer feedback, old sensor data.

Deletions run in bounded chunks so a large purge never holds a long write lock (SQLite) or a
huge transaction (PostgreSQL); the caller's session commits each chunk.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain.models import (
    ConsumerFeedback,
    NotificationOutbox,
    OutboxStatus,
    SqalSample,
    StoredFile,
)
from domain.platform.files import inside

CHUNK = 5_000


def delete_expired_files(session: Session, export_dir: Path, *, now: datetime) -> dict[str, Any]:
    """Files past `expires_at`: the file on disk, then its row. Missing files are counted."""
    deleted = missing = freed = 0
    while True:
        rows = session.scalars(
            select(StoredFile)
            .where(StoredFile.expires_at < now)
            .order_by(StoredFile.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        for row in rows:
            path = inside(export_dir, row.path)
            if path.is_file():
                freed += path.stat().st_size
                path.unlink()
            else:
                missing += 1
            session.delete(row)
            deleted += 1
        session.commit()
    return {"files_deleted": deleted, "files_missing_on_disk": missing, "bytes_freed": freed}


def delete_old_outbox(session: Session, *, before: datetime) -> int:
    """Sent or failed notifications created before `before` (pending ones are kept)."""
    done = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value]
    return _delete_in_chunks(
        session,
        select(NotificationOutbox.id).where(
            NotificationOutbox.created_at < before, NotificationOutbox.status.in_(done)
        ),
        NotificationOutbox,
    )


def delete_old_outbox_files(outbox_dir: Path, *, before: datetime) -> int:
    """Messages the file backend wrote under OUTBOX_DIR before `before` (by modification time)."""
    if not outbox_dir.is_dir():
        return 0
    cutoff = before.timestamp()
    deleted = 0
    for path in outbox_dir.rglob("*"):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def delete_old_feedback(session: Session, *, before: datetime) -> int:
    """Consumer feedback received before `before`: its e-mail address and comment go with it.

    The search index drops the documents at its next run (the delete triggers log the change);
    audit rows naming `feedback:ID` stay, they hold ids, not the text."""
    return _delete_in_chunks(
        session,
        select(ConsumerFeedback.id).where(ConsumerFeedback.created_at < before),
        ConsumerFeedback,
    )


def delete_old_sensor_data(session: Session, *, before: datetime) -> int:
    """SQAL samples measured before `before`; the hourly aggregates keep their summary."""
    return _delete_in_chunks(
        session, select(SqalSample.id).where(SqalSample.measured_at < before), SqalSample
    )


def _delete_in_chunks(session: Session, ids_query: Any, model: Any) -> int:
    total = 0
    while True:
        ids = list(session.scalars(ids_query.limit(CHUNK)))
        if not ids:
            return total
        session.execute(delete(model).where(model.id.in_(ids)))
        session.commit()
        total += len(ids)
