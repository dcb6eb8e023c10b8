"""Versions of the data a report reads, for the result cache (issue 21, part 7): a string that
changes whenever that data does, computed in a few indexed queries before a job is enqueued.

Records are only ever added or deleted (ingest and the demo generator insert; the retention
cleanup deletes), so a table's share is its count and newest id for the lot; the lot's own row
is hashed whole. A lot report also ranks the lot's ITM against its site's other lots, so the
site's lots with an ITM take part too.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.models import ConsumerFeedback, FeedingRecord, Lot, SqalSample
from domain.queries import lot_by_id


def lot_data_version(session: Session, lot_id: int) -> str:
    """The version of everything a lot's PDF or workbook reads (NotFound for an unknown lot)."""
    lot = lot_by_id(session, lot_id)
    parts: list[object] = [
        getattr(lot, column.key) for column in Lot.__table__.columns if column.key != "notes"
    ]
    parts.append(lot.notes)
    for table in (FeedingRecord, SqalSample, ConsumerFeedback):
        parts.extend(
            session.execute(
                select(func.count(), func.max(table.id)).where(table.lot_id == lot_id)
            ).one()
        )
    parts.extend(
        session.execute(
            select(func.count(), func.max(Lot.id), func.sum(Lot.itm)).where(
                Lot.site_id == lot.site_id, Lot.itm.is_not(None)
            )
        ).one()
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]
