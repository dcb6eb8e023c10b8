"""The processing audit trail in the domain: exactly-once rows, append-only, subjects by hash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from domain.errors import InvalidInput
from domain.ml import runs as ml_runs
from domain.models import Gaveur, Lot, ProcessingAudit
from domain.platform import audit
from domain.platform.files import FileStore
from domain.progress import quiet
from domain.reports import runs
from tests.unit.reports.conftest import NOW

KEY = "test-audit-key"


def _count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ProcessingAudit)) or 0)


def test_a_retry_under_the_same_key_writes_nothing_twice(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    engine = unit_fresh_demo()
    first = audit.Processing(job="send_email", purpose="notification", key="outbox-1", client="a")
    subjects = [audit.email("Jean@Example.org ", key=KEY), audit.gaveur(3)]
    with Session(engine) as session, session.begin():
        assert audit.record(session, first, subjects) == 2
    # The same processing again (a retry: same exactly-once key), and a distinct one
    with Session(engine) as session, session.begin():
        audit.record(session, first, subjects)
        audit.record(session, first, [subjects[0], subjects[0]])
        audit.record(session, audit.Processing("send_email", "notification", "outbox-2"), subjects)
    with Session(engine) as session:
        assert _count(session) == 4
        # Found by the address, however it was written
        found = audit.read(session, subject=audit.parse_subject("email:jean@example.org", key=KEY))
        assert [(e.job, e.client) for e in found] == [("send_email", "a"), ("send_email", None)]
        assert "jean" not in str(found).lower()
        assert {e.subject for e in audit.read(session, client="a")} == {str(s) for s in subjects}


def test_the_trail_refuses_updates_and_deletes(unit_fresh_demo: Callable[..., Engine]) -> None:
    engine = unit_fresh_demo()
    with Session(engine) as session, session.begin():
        audit.record(session, audit.Processing("j", "p", "k"), [audit.gaveur(1)])
    for statement in (
        update(ProcessingAudit).values(outcome="forged"),
        delete(ProcessingAudit),
    ):
        with Session(engine) as session, pytest.raises(DatabaseError, match="append-only"):
            session.execute(statement)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT outcome FROM processing_audit")).all()
        assert [tuple(r) for r in rows] == [("done",)]


def test_subjects_are_parsed_or_refused_clearly() -> None:
    assert str(audit.parse_subject("gaveur:12", key=KEY)) == "gaveur:12"
    same = audit.parse_subject("phone:06 12 34 56 78", key=KEY)
    assert same == audit.phone("+33612345678", key=KEY) and "0612" not in str(same)
    assert audit.email("a@b.example", key=KEY) != audit.email("a@b.example", key="other key")
    for bad in ("lot:3", "gaveur:x", "gaveur:", "nothing"):
        with pytest.raises(InvalidInput):
            audit.parse_subject(bad, key=KEY)


def test_reports_that_name_gaveurs_record_them_once_per_task(
    unit_fresh_demo: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = unit_fresh_demo()
    store = FileStore(tmp_path / "exports", retention_days=7)
    processing = audit.Processing("generate_lot_pdf_report", "report", "task-1", client="ops")
    with Session(engine) as session:
        lot = session.scalars(select(Lot).order_by(Lot.id).limit(1)).one()
        for _attempt in range(2):  # a retry of the same task
            ctx = runs.ExportContext(session, store, NOW, "task-1", quiet, audit=processing)
            runs.lot_xlsx(ctx, lot_id=lot.id)
            session.commit()
        rows = audit.read(session)
        assert [(r.subject, r.client, r.purpose) for r in rows] == [
            (f"gaveur:{lot.gaveur_id}", "ops", "report")
        ]


def test_clustering_records_every_gaveur_it_read(
    unit_fresh_demo: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = unit_fresh_demo(scale=0.1)
    with Session(engine) as session:
        ctx = ml_runs.RunContext(
            session=session,
            model_dir=tmp_path,
            task_id="t-1",
            progress=quiet,
            should_stop=lambda: False,
            audit=audit.Processing("cluster_gaveurs", "performance analysis", "t-1"),
        )
        ml_runs.cluster_gaveurs(ctx, k=2)
        session.commit()
        clustered = {r.subject for r in audit.read(session)}
        with_lots = session.scalars(
            select(Gaveur.id).join(Lot, Lot.gaveur_id == Gaveur.id).where(Lot.itm.is_not(None))
        ).all()
        assert clustered == {f"gaveur:{i}" for i in with_lots} and clustered
