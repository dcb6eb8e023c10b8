"""The processing audit trail (scope audit:read): who processed whose personal data, when, why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AuditReaderDep, SessionDep, SettingsDep
from api.params import OptionalName
from domain.platform import audit

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[AuditReaderDep])

Subject = Annotated[str | None, Query(min_length=3, max_length=255)]


def _utc(when: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


@router.get("")
def audit_trail(
    session: SessionDep,
    settings: SettingsDep,
    subject: Subject = None,
    client: OptionalName = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_ROWS)] = 500,
) -> dict[str, Any]:
    """Rows oldest first. `subject`: gaveur:ID, feedback:ID, email:ADDRESS or phone:NUMBER (an
    address or number is hashed as the writers hashed it); `from`/`to`: ISO date-times."""
    who = None
    if subject is not None:
        who = audit.parse_subject(subject, key=settings.audit_subject_key.get_secret_value())
    since, until = (_utc(when) for when in (since, until))
    entries = audit.read(session, subject=who, client=client, since=since, until=until, limit=limit)
    return {"total": len(entries), "entries": audit.entries_as_dicts(entries)}
