"""The erasure finds a person in sealed fields of finished journal entries and journaled
workflows (their messages no longer carry addresses in clear), and leaves other people's."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from domain import gdpr
from domain.models import Gaveur, JournalEntry, WorkflowJournalEntry
from domain.platform import journal, sealing

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _message(**kwargs: str) -> str:
    return json.dumps({"kwargs": {k: sealing.seal(v, "") for k, v in kwargs.items()}})


def test_sealed_traces_in_finished_journals_are_erased(
    unit_fresh_demo: Callable[..., Engine], tmp_path: Path
) -> None:
    # Given a gaveur whose address and number sit sealed in a finished job and workflow, and
    # somebody else's address sealed in another finished job
    engine = unit_fresh_demo()
    with Session(engine) as session:
        gaveur = session.scalars(select(Gaveur).where(Gaveur.email != "")).first()
        assert gaveur is not None
        email, phone, gaveur_id = gaveur.email, gaveur.phone, gaveur.id
    bodies = {
        "theirs": _message(to_email=email, subject="s"),
        "other": _message(to_email="quelqu.un@example.org", subject="s"),
    }
    with Session(engine) as session, session.begin():
        for task_id, body in bodies.items():
            session.add(
                JournalEntry(
                    task_id=task_id, actor="send_email", queue="notifications", body=body,
                    accepted_at=AT, finished_at=AT, outcome="SUCCESS",
                )
            )  # fmt: skip
    graph = json.dumps(
        ["fail_fast", "w", "sms", 0, "", json.dumps({"body": _message(phone=phone)})]
    )
    journal.record_workflow(engine, workflow_id="wf-theirs", name="w", graph=graph, submitted_at=AT)
    journal.mark_workflows_finished(engine, ["wf-theirs"], at=AT)
    assert email not in bodies["theirs"] and phone not in graph

    # When they are erased
    with Session(engine) as session, session.begin():
        person = gdpr.find_person(session, gaveur_id=gaveur_id)
        counts = gdpr.erase(session, person, export_dir=tmp_path, payload_keys="")

    # Then their journal entry lost its body, their workflow is gone, the other is kept
    assert counts["journal"] == 1 and counts["workflows"] == 1
    with Session(engine) as session:
        assert session.get_one(JournalEntry, "theirs").body == ""
        assert session.get_one(JournalEntry, "other").body == bodies["other"]
        assert session.get(WorkflowJournalEntry, "wf-theirs") is None
