"""The outbox: one row per logical notification, written before any send, keyed for exactly-once.

A job computes a stable idempotency key from what the notification *is* (kind, target, content),
never from the attempt. A retried job finds its row: `sent` means stop, anything else means send
again with the same key, which the SMS provider uses to refuse a second delivery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.models import NotificationOutbox, OutboxStatus, utcnow


def idempotency_key(*parts: object) -> str:
    """A stable key for a logical notification, from the values that identify it."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:40]


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    status: str
    attempts: int
    provider_message_id: str | None
    created_at: datetime | None


def _entry(row: NotificationOutbox) -> Entry:
    return Entry(
        id=row.id,
        key=row.idempotency_key,
        channel=row.channel,
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        provider_message_id=row.provider_message_id,
        created_at=row.created_at,
    )


def record(
    session: Session, *, key: str, channel: str, recipient: str, subject: str | None, body: str
) -> Entry:
    """The outbox row for `key`, created pending if new; counts this attempt. Commits."""
    row = session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.idempotency_key == key)
    ).first()
    if row is None:
        row = NotificationOutbox(
            idempotency_key=key,
            channel=channel,
            recipient=recipient,
            subject=subject[:255] if subject else None,
            body=body,
            status=OutboxStatus.PENDING.value,
            attempts=0,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            # Another worker recorded the same notification first: use its row.
            session.rollback()
            return record(
                session, key=key, channel=channel, recipient=recipient, subject=subject, body=body
            )
    if row.status != OutboxStatus.SENT.value:
        row.attempts += 1
    session.commit()
    return _entry(row)


def mark_sent(session: Session, key: str, *, provider_message_id: str | None) -> None:
    row = _row(session, key)
    row.status = OutboxStatus.SENT.value
    row.provider_message_id = provider_message_id
    row.sent_at = utcnow()
    row.last_error = None
    session.commit()


def mark_failed(session: Session, key: str, *, error: str, final: bool) -> None:
    row = _row(session, key)
    row.last_error = error[:2000]
    if final:
        row.status = OutboxStatus.FAILED.value
    session.commit()


def _row(session: Session, key: str) -> NotificationOutbox:
    return session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.idempotency_key == key)
    ).one()
