"""Right of access and erasure (admin): what we hold on a person, and their erasure as a job.

The person is named in the body (never in a URL, which access logs keep): a gaveur id or an
e-mail address. Unknown: 404; jobs about them still queued or running: 409 (erase again once
they have finished). The erasure job's message carries the address's keyed hash, not the
address."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.gdpr import ErasePerson, erase_personal_data
from api.deps import AdminDep, SessionDep, SettingsDep
from api.enqueue import submit
from api.schemas import ACCEPTED, Accepted
from domain import gdpr
from domain.bounds import RowId
from domain.errors import Conflict
from domain.platform import audit

router = APIRouter(prefix="/api/gdpr", tags=["gdpr"], dependencies=[AdminDep])


class PersonRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gaveur_id: RowId | None = None
    email: str | None = Field(default=None, min_length=3, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> PersonRef:
        if (self.gaveur_id is None) == (self.email is None):
            raise ValueError("name the person by exactly one of gaveur_id and email")
        return self


def _person(ref: PersonRef, session: Any, key: str) -> gdpr.Person:
    return gdpr.find_person(session, gaveur_id=ref.gaveur_id, email=ref.email, key=key)


@router.post("/export")
def export_person(ref: PersonRef, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Everything we hold on the person, and their processing history."""
    key = settings.audit_subject_key.get_secret_value()
    return gdpr.export(session, _person(ref, session, key), key=key)


@router.post("/erase", status_code=202, responses=ACCEPTED)
def erase_person(ref: PersonRef, session: SessionDep, settings: SettingsDep) -> Accepted:
    """Erase the person everywhere, as a job (follow it at status_url)."""
    key = settings.audit_subject_key.get_secret_value()
    active = gdpr.busy(
        session,
        _person(ref, session, key),
        payload_keys=settings.payload_keys.get_secret_value(),
    )
    if active:
        raise Conflict(
            f"jobs about this person are still queued or running ({', '.join(active[:5])}); "
            "erase again once they have finished"
        )
    email_hash = audit.email(ref.email, key=key).ref if ref.email is not None else None
    payload = ErasePerson(gaveur_id=ref.gaveur_id, email_hash=email_hash)
    return submit(erase_personal_data, payload, message="Erasure started")
