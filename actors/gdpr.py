"""Erasure of a person (GDPR article 17), on queue `default`: the database, the produced files,
the written e-mails, job records and dead letters in Redis, the search index, and an audit
entry saying it happened. `gaveurs gdpr erase` runs the same function in its own process.

The message names the person by gaveur id or by the keyed hash of their address, never by the
address itself: the erasure's own message and journal entry carry nothing to erase.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, model_validator

from domain import gdpr
from domain.bounds import RowId
from domain.platform import audit
from runtime import (
    Payload,
    RetryPolicy,
    audit_key,
    audit_processing,
    broker,
    current_settings,
    current_task_id,
    engine,
    job,
    progress,
    records,
    scrub_redis,
    session_scope,
)

ERASURE_PURPOSE = "erasure"


class ErasePerson(Payload):
    gaveur_id: RowId | None = None
    email_hash: str | None = Field(
        default=None, min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$"
    )

    @model_validator(mode="after")
    def _one_subject(self) -> ErasePerson:
        if (self.gaveur_id is None) == (self.email_hash is None):
            raise ValueError("name the person by exactly one of gaveur_id and email_hash")
        return self


def erase_person(
    *, gaveur_id: int | None = None, email: str | None = None, email_hash: str | None = None
) -> dict[str, Any]:
    """Erase the person everywhere; counts of what was anonymised or deleted (no personal data).
    NotFound for a person we hold nothing on, Conflict while a job about them is active."""
    settings = current_settings()
    key = audit_key()
    with session_scope() as session:
        person = gdpr.find_person(
            session, gaveur_id=gaveur_id, email=email, email_hash=email_hash, key=key
        )
        traces = person.traces()
        counts = gdpr.erase(
            session,
            person,
            export_dir=settings.export_dir,
            payload_keys=settings.payload_keys.get_secret_value(),
        )
        counts["written_emails"] = gdpr.scrub_files(settings.outbox_dir, traces)
        erasure_key = f"erase:{current_task_id() or uuid.uuid4().hex}"
        audit.record(
            session,
            audit_processing(purpose=ERASURE_PURPOSE, key=erasure_key),
            person.subjects(key=key),
        )
    progress(60, "database and files erased")
    counts.update(scrub_redis(broker(), records(), traces))
    progress(80, "Redis scrubbed")
    from domain import search

    search.index_changes(engine())
    # Deleted terms stay in the full-text index's segments until they are merged.
    search.optimize(engine())
    return {"status": "success", "erased": counts}


@job(queue="default", payload=ErasePerson, retry=RetryPolicy(max_retries=3, min_backoff_ms=5_000))
def erase_personal_data(payload: ErasePerson) -> dict[str, Any]:
    """Anonymise a person across the database, files, Redis and the search index."""
    return erase_person(gaveur_id=payload.gaveur_id, email_hash=payload.email_hash)
