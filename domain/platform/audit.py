"""The processing audit trail: one row per processing of a person's data, append-only.

A row says when, which client (API client name, "scheduler", "cli"), which job or route and
task, whose data (the data subject), why (purpose) and how it ended. Subjects are stored as
`kind:ref`: a gaveur or a consumer feedback by id, a phone number or an e-mail address by an
HMAC-SHA256 keyed with AUDIT_SUBJECT_KEY (so the trail holds no address, yet a person's history
is found from their address). Writers insert in the transaction of their effect, or under the
exactly-once key of their effect: each row carries a unique `dedupe_key` derived from it, and a
retry's insert is ignored. There is no update or delete here; the database refuses them too
(triggers, and on PostgreSQL a role `gaveurs_audit_writer` that may only INSERT: migration
0009_processing_audit).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.errors import InvalidInput
from domain.models import Gaveur, Lot, ProcessingAudit

KINDS = ("gaveur", "feedback", "phone", "email")
#: Used when AUDIT_SUBJECT_KEY is unset (development): set a secret key in production.
DEVELOPMENT_KEY = "gaveurs-development-audit-key"
MAX_ROWS = 1000


@dataclass(frozen=True)
class Subject:
    kind: str
    ref: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"


def _keyed(value: str, key: str) -> str:
    return hmac.new((key or DEVELOPMENT_KEY).encode(), value.encode(), hashlib.sha256).hexdigest()


def normalize_phone(number: str) -> str:
    """+33 6 12-34.56.78 -> +33612345678; a national 06... keeps its digits."""
    return re.sub(r"[^\d+]", "", number.strip())


def gaveur(gaveur_id: int) -> Subject:
    return Subject("gaveur", str(gaveur_id))


def feedback(feedback_id: int) -> Subject:
    return Subject("feedback", str(feedback_id))


def email(address: str, *, key: str) -> Subject:
    return Subject("email", _keyed(address.strip().lower(), key))


def phone(number: str, *, key: str, region: str = "FR") -> Subject:
    """Hashed in E.164 form (as the SMS is sent), so 06 12 34 56 78 and +33612345678 agree."""
    from domain.notify.phone import to_e164

    try:
        normal = to_e164(number, region=region)
    except InvalidInput:
        normal = normalize_phone(number)
    return Subject("phone", _keyed(normal, key))


def gaveurs_of_lots(session: Session, lot_ids: Iterable[int]) -> list[Subject]:
    ids = list(lot_ids)
    if not ids:
        return []
    found = session.scalars(select(Lot.gaveur_id).where(Lot.id.in_(ids)).distinct())
    return [gaveur(i) for i in sorted(found)]


def gaveurs_by_code(session: Session, codes: Iterable[str]) -> list[Subject]:
    wanted = sorted(set(codes))
    if not wanted:
        return []
    found = session.scalars(select(Gaveur.id).where(Gaveur.code.in_(wanted)))
    return [gaveur(i) for i in sorted(found)]


def parse_subject(text: str, *, key: str) -> Subject:
    """`gaveur:12`, `feedback:7`, `email:jean@example.org`, `phone:+33612345678` (an address or
    number is hashed here, as the writers did)."""
    kind, _, value = text.partition(":")
    if kind not in KINDS or not value:
        raise InvalidInput(f"subject {text!r}: use one of {[k + ':…' for k in KINDS]}")
    if kind == "email":
        return email(value, key=key)
    if kind == "phone":
        return phone(value, key=key)
    if not value.isdigit():
        raise InvalidInput(f"subject {text!r}: a {kind} is named by its numeric id")
    return Subject(kind, value)


@dataclass(frozen=True)
class Processing:
    """What was done, by whom, under which exactly-once key."""

    job: str
    purpose: str
    key: str
    client: str | None = None
    task_id: str | None = None
    outcome: str = "done"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    client: str | None
    job: str
    task_id: str | None
    subject: str
    purpose: str
    outcome: str


def _dedupe(key: str, subject: Subject) -> str:
    return hashlib.sha256(f"{key}\x1f{subject}".encode()).hexdigest()[:40]


def record(session: Session, processing: Processing, subjects: Iterable[Subject]) -> int:
    """Insert one row per distinct subject in the session's transaction; rows already written
    under the same key (a retry) are left alone. Returns the number of subjects."""
    now = datetime.now(UTC)
    rows = [
        {
            "at": now,
            "client": processing.client,
            "job": processing.job[:128],
            "task_id": processing.task_id,
            "subject": str(subject),
            "purpose": processing.purpose,
            "outcome": processing.outcome,
            "dedupe_key": _dedupe(processing.key, subject),
        }
        for subject in dict.fromkeys(subjects)
    ]
    if rows:
        dialect = session.get_bind().dialect.name
        insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(ProcessingAudit).on_conflict_do_nothing(), rows)
    return len(rows)


def read(
    session: Session,
    *,
    subject: Subject | None = None,
    client: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_ROWS,
) -> list[AuditEntry]:
    """Rows oldest first, filtered by subject, client and time window."""
    query = select(ProcessingAudit)
    if subject is not None:
        query = query.where(ProcessingAudit.subject == str(subject))
    if client is not None:
        query = query.where(ProcessingAudit.client == client)
    if since is not None:
        query = query.where(ProcessingAudit.at >= since)
    if until is not None:
        query = query.where(ProcessingAudit.at < until)
    query = query.order_by(ProcessingAudit.at, ProcessingAudit.id).limit(limit)
    return [
        AuditEntry(
            at=row.at,
            client=row.client,
            job=row.job,
            task_id=row.task_id,
            subject=row.subject,
            purpose=row.purpose,
            outcome=row.outcome,
        )
        for row in session.scalars(query)
    ]


def entries_as_dicts(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    return [{**vars(e), "at": e.at.isoformat()} for e in entries]
