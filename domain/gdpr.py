"""Right of access and erasure in the database and the files (GDPR articles 15 and 17).

A person is found by gaveur id or e-mail address (or the address's keyed hash, so an erasure
job's message need not carry the address); what we hold on them is gathered from the tables,
the produced files and the audit trail. Erasure anonymises instead of deleting where other data
hangs on the row (a gaveur's lots stay, under "Gaveur effacé #ID"), deletes what only concerns
the person (notification outbox rows, files that name them), and empties the payloads of
finished journal entries that carry their data. It refuses while a job about the person is
still queued or running (unfinished journal entries carrying their data): retry once it ends.

Certificates: a certificate PDF names its lot's gaveur, and the ledger stores the PDF's
sha256. The PDF is deleted; the ledger link (hashes only, no personal data) stays, so the chain
from GENESIS still verifies for every other certificate, and verifying this one says its file
is no longer stored. Redis (job records, dead letters) is scrubbed by runtime.scrub_redis.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from domain.errors import Conflict, NotFound
from domain.models import (
    ConsumerFeedback,
    Gaveur,
    JournalEntry,
    Lot,
    NotificationOutbox,
    ProcessingAudit,
    Site,
    StoredFile,
    WorkflowJournalEntry,
)
from domain.platform import audit, sealing

ERASED = "[effacé]"


@dataclass
class Person:
    """What identifies a person in our data: ids, and the strings to look for."""

    gaveur_ids: set[int] = field(default_factory=set)
    feedback_ids: set[int] = field(default_factory=set)
    site_ids: set[int] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def traces(self) -> list[str]:
        """Strings whose presence means "this person's data is here" (lower case)."""
        found = {e.lower() for e in self.emails} | {n.lower() for n in self.names}
        for phone in self.phones:
            found |= {phone, audit.normalize_phone(phone)}
            try:
                from domain.notify.phone import to_e164

                found.add(to_e164(phone))
            except Exception:  # a number that cannot be normalised: its raw forms are enough
                pass
        return sorted(t for t in found if len(t) >= 5)

    def subjects(self, *, key: str) -> list[audit.Subject]:
        return [
            *(audit.gaveur(i) for i in sorted(self.gaveur_ids)),
            *(audit.feedback(i) for i in sorted(self.feedback_ids)),
            *(audit.email(e, key=key) for e in sorted(self.emails)),
            *(audit.phone(p, key=key) for p in sorted(self.phones)),
        ]


def _add_gaveur(person: Person, gaveur: Gaveur) -> None:
    person.gaveur_ids.add(gaveur.id)
    person.emails.add(gaveur.email)
    person.phones.add(gaveur.phone)
    person.names.add(f"{gaveur.first_name} {gaveur.last_name}")


def find_person(
    session: Session,
    *,
    gaveur_id: int | None = None,
    email: str | None = None,
    email_hash: str | None = None,
    key: str = "",
) -> Person:
    """The person, or NotFound when we hold nothing on them."""
    person = Person()
    if gaveur_id is not None:
        gaveur = session.get(Gaveur, gaveur_id)
        if gaveur is None:
            raise NotFound(f"no gaveur {gaveur_id}")
        _add_gaveur(person, gaveur)
        return person
    wanted = audit.email(email, key=key).ref if email is not None else email_hash
    if not wanted:
        raise NotFound("name a gaveur id or an e-mail address")

    def matches(address: str | None) -> bool:
        return bool(address) and hmac.compare_digest(
            audit.email(address or "", key=key).ref, wanted
        )

    for gaveur in session.scalars(select(Gaveur)):
        if matches(gaveur.email):
            _add_gaveur(person, gaveur)
    for site in session.scalars(select(Site)):
        if matches(site.manager_email):
            person.site_ids.add(site.id)
            person.emails.add(site.manager_email)
            person.phones.add(site.manager_phone)
            person.names.add(site.manager_name)
    rows = session.execute(
        select(ConsumerFeedback.id, ConsumerFeedback.consumer_email).where(
            ConsumerFeedback.consumer_email.is_not(None)
        )
    )
    for feedback_id, address in rows:
        if matches(address):
            person.feedback_ids.add(feedback_id)
            person.emails.add(address)
    for (recipient,) in session.execute(select(NotificationOutbox.recipient).distinct()):
        if matches(recipient):
            person.emails.add(recipient)
    if not person.emails:
        raise NotFound("we hold no data on that e-mail address")
    return person


def _contains_trace(column: Any, traces: Iterable[str]) -> Any:
    return or_(*(column.ilike(f"%{t}%") for t in traces))


#: Unfinished messages with sealed fields opened per erasure check, at most.
SEALED_SCAN = 10_000


def busy(session: Session, person: Person, *, payload_keys: str = "") -> list[str]:
    """Task ids of unfinished jobs whose message carries the person's data, in clear or in a
    sealed field (domain/platform/sealing.py: opened here with `payload_keys`)."""
    traces = person.traces()
    if not traces:
        return []
    unfinished = JournalEntry.finished_at.is_(None)
    query = select(JournalEntry.task_id).where(
        unfinished, _contains_trace(JournalEntry.body, traces)
    )
    found = list(session.scalars(query.limit(20)))
    with_sealed = select(JournalEntry.task_id, JournalEntry.body).where(
        unfinished, JournalEntry.body.contains(sealing.MARK)
    )
    for task_id, body in session.execute(with_sealed.limit(SEALED_SCAN)):
        if len(found) >= 20:
            break
        if task_id not in found and _sealed_trace(body, traces, payload_keys):
            found.append(task_id)
    return found


def _sealed_trace(text: str, traces: Iterable[str], payload_keys: str) -> bool:
    """Whether a sealed value in `text` (a message, a workflow's graph) opens on a trace."""
    opened = " ".join(sealing.open_all(text, payload_keys)).lower()
    return any(trace in opened for trace in traces)


def _carries(text: str, traces: Iterable[str], payload_keys: str) -> bool:
    lowered = text.lower()
    return any(trace in lowered for trace in traces) or _sealed_trace(text, traces, payload_keys)


def _files(session: Session, person: Person) -> list[StoredFile]:
    """Files that name the person: those the audit trail says were made about them, and the
    lot reports and certificates of their lots (made before the trail existed)."""
    subjects = [str(audit.gaveur(i)) for i in person.gaveur_ids]
    tasks = (
        set(
            session.scalars(
                select(ProcessingAudit.task_id).where(ProcessingAudit.subject.in_(subjects))
            )
        )
        if subjects
        else set()
    )
    lot_ids = (
        list(session.scalars(select(Lot.id).where(Lot.gaveur_id.in_(person.gaveur_ids))))
        if person.gaveur_ids
        else []
    )
    named = [StoredFile.task_id.in_([t for t in tasks if t])] if tasks else []
    named += [StoredFile.filename.like(f"lot_{i}_%") for i in lot_ids]
    named += [StoredFile.filename.like(f"certificate_{i}_%") for i in lot_ids]
    if not named:
        return []
    return list(session.scalars(select(StoredFile).where(or_(*named))))


def export(session: Session, person: Person, *, key: str) -> dict[str, Any]:
    """What we hold on the person, and its processing history (JSON-able)."""
    gaveurs = [session.get_one(Gaveur, i) for i in sorted(person.gaveur_ids)]
    feedback = [session.get_one(ConsumerFeedback, i) for i in sorted(person.feedback_ids)]
    sites = [session.get_one(Site, i) for i in sorted(person.site_ids)]
    outbox = session.scalars(
        select(NotificationOutbox).where(
            NotificationOutbox.recipient.in_(person.emails | person.phones)
        )
    ).all()
    history = []
    for subject in person.subjects(key=key):
        history += audit.entries_as_dicts(audit.read(session, subject=subject))
    return {
        "gaveurs": [
            {
                "id": g.id,
                "code": g.code,
                "first_name": g.first_name,
                "last_name": g.last_name,
                "phone": g.phone,
                "email": g.email,
                "lots": list(session.scalars(select(Lot.id).where(Lot.gaveur_id == g.id))),
            }
            for g in gaveurs
        ],
        "site_manager_of": [
            {"site": s.code, "name": s.manager_name, "email": s.manager_email} for s in sites
        ],
        "consumer_feedback": [
            {"id": f.id, "lot_id": f.lot_id, "comment": f.comment, "email": f.consumer_email}
            for f in feedback
        ],
        "notifications": [
            {"channel": o.channel, "subject": o.subject, "status": o.status, "at": str(o.sent_at)}
            for o in outbox
        ],
        "files": [{"kind": f.kind, "path": f.path} for f in _files(session, person)],
        "processing_history": sorted(history, key=lambda e: e["at"]),
    }


def erase(
    session: Session, person: Person, *, export_dir: Path, payload_keys: str = ""
) -> dict[str, int]:
    """Anonymise or delete the person's data in the database and the produced files, in the
    session's transaction (the caller commits). Conflict while a job about them is active."""
    active = busy(session, person, payload_keys=payload_keys)
    if active:
        raise Conflict(
            f"jobs about this person are still queued or running ({', '.join(active[:5])}); "
            "erase again once they have finished"
        )
    traces = person.traces()
    counts = dict.fromkeys(
        ("gaveurs", "sites", "feedback", "outbox", "journal", "workflows", "files"), 0
    )
    for gaveur_id in person.gaveur_ids:
        gaveur = session.get_one(Gaveur, gaveur_id)
        gaveur.first_name, gaveur.last_name = "Gaveur", f"effacé #{gaveur_id}"
        gaveur.phone, gaveur.email, gaveur.active = "", "", False
        counts["gaveurs"] += 1
    for site_id in person.site_ids:
        site = session.get_one(Site, site_id)
        site.manager_name, site.manager_email, site.manager_phone = ERASED, "", ""
        counts["sites"] += 1
    for feedback_id in person.feedback_ids:
        feedback = session.get_one(ConsumerFeedback, feedback_id)
        feedback.consumer_email, feedback.comment = None, ERASED
        counts["feedback"] += 1
    if traces:
        for row in session.scalars(
            select(NotificationOutbox).where(
                or_(
                    NotificationOutbox.recipient.in_(person.emails | person.phones),
                    _contains_trace(NotificationOutbox.body, traces),
                )
            )
        ):
            session.delete(row)
            counts["outbox"] += 1
        # Finished (busy() refused otherwise): nothing will resend them. Their data is in clear
        # (older messages) or in sealed fields, opened here to be found.
        journaled = select(JournalEntry.task_id, JournalEntry.body).where(
            or_(
                _contains_trace(JournalEntry.body, traces),
                JournalEntry.body.contains(sealing.MARK),
            )
        )
        carriers = [
            task_id
            for task_id, body in session.execute(journaled.execution_options(yield_per=1000))
            if _carries(body, traces, payload_keys)
        ]
        for start in range(0, len(carriers), 1000):
            chunk = carriers[start : start + 1000]
            session.execute(
                update(JournalEntry).where(JournalEntry.task_id.in_(chunk)).values(body="")
            )
        counts["journal"] += len(carriers)
        flows = select(WorkflowJournalEntry).where(
            WorkflowJournalEntry.finished_at.is_not(None),
            or_(
                _contains_trace(WorkflowJournalEntry.graph, traces),
                WorkflowJournalEntry.graph.contains(sealing.MARK),
            ),
        )
        for flow in session.scalars(flows).all():
            if _carries(flow.graph, traces, payload_keys):
                session.delete(flow)
                counts["workflows"] += 1
    for stored in _files(session, person):
        (export_dir / stored.path).unlink(missing_ok=True)
        session.delete(stored)  # a certificate's link keeps its hashes (file_id SET NULL)
        counts["files"] += 1
    counts["files"] += scrub_files(export_dir, traces)
    return counts


def scrub_files(root: Path, traces: list[str]) -> int:
    """Delete the files under `root` whose bytes carry a trace (CSV exports, written e-mails)."""
    if not traces or not root.is_dir():
        return 0
    needles = [t.encode() for t in traces]
    deleted = 0
    for path in root.rglob("*"):
        if path.is_file() and any(n in path.read_bytes().lower() for n in needles):
            path.unlink()
            deleted += 1
    return deleted
