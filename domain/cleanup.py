"""Cleanup of what outlives its use: expired export files, old outbox rows, old sensor data.

Deletions run in bounded chunks so a large purge never holds a long write lock (SQLite) or a
huge transaction (PostgreSQL); the caller's session commits each chunk.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain.models import NotificationOutbox, OutboxStatus, SqalSample, StoredFile
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
