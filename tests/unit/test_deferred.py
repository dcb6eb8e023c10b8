"""Deferred jobs in the journal (domain/platform/deferred.py) on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.platform import db, deferred, journal


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path}/deferred.db"
    db.migrate(url)
    return db.make_engine(url)


def _deferral(task_id: str, *, unique_key: str | None = None) -> deferred.Deferral:
    return deferred.Deferral(task_id, "rel_effect", "default", "{}", unique_key=unique_key)


def _pending(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [entry.task_id for entry in deferred.pending(session, limit=100)]


def test_deferred_jobs_are_read_in_acceptance_order_until_forwarded(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for task_id in ("z", "a", "m"):
        assert deferred.defer(engine, _deferral(task_id), max_jobs=10) is None
    assert _pending(engine) == ["z", "a", "m"]
    deferred.mark_forwarded(engine, ["z", "a"])
    assert _pending(engine) == ["m"]


def test_a_uniqueness_key_is_held_by_one_pending_job_then_free_once_forwarded(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    assert deferred.defer(engine, _deferral("first", unique_key="job:3472"), max_jobs=10) is None
    # Given a pending job with key job:3472, a second one with that key is the first
    held = deferred.defer(engine, _deferral("second", unique_key="job:3472"), max_jobs=10)
    assert held == deferred.Held("first", None, pending=True)
    # Once forwarded, Redis holds the key: the database accepts a new deferral
    deferred.mark_forwarded(engine, ["first"])
    assert deferred.defer(engine, _deferral("third", unique_key="job:3472"), max_jobs=10) is None


def test_the_same_task_id_is_stored_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    keyed = deferred.Deferral("k", "rel_effect", "default", "{}", idempotency="claim abc 60")
    assert deferred.defer(engine, keyed, max_jobs=10) is None
    assert deferred.defer(engine, keyed, max_jobs=10) == deferred.Held("k", "claim abc 60", True)
    assert _pending(engine) == ["k"]


def test_past_the_bound_a_deferral_is_refused(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for task_id in ("a", "b"):
        deferred.defer(engine, _deferral(task_id), max_jobs=2)
    with pytest.raises(deferred.DeferredFull, match="DEFERRED_MAX_JOBS"):
        deferred.defer(engine, _deferral("c"), max_jobs=2)
    deferred.mark_forwarded(engine, ["a"])
    assert deferred.defer(engine, _deferral("c"), max_jobs=2) is None


def test_the_reconciler_leaves_pending_deferrals_to_the_forwarder(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    deferred.defer(engine, _deferral("waiting"), max_jobs=10)
    deferred.defer(engine, _deferral("sent"), max_jobs=10)
    deferred.mark_forwarded(engine, ["sent"])
    now = datetime.now(UTC)
    with Session(engine) as session:
        rows = journal.unfinished(
            session,
            accepted_after=now - timedelta(days=1),
            accepted_before=now + timedelta(days=1),
            cursor=None,
            limit=10,
        )
    assert [row.task_id for row in rows] == ["sent"]


def test_a_superseded_job_is_finished_and_names_its_replacement(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    deferred.defer(engine, _deferral("late", unique_key="job:1"), max_jobs=10)
    deferred.mark_forwarded(engine, ["late"], superseded={"late": "direct"})
    entry = deferred.lookup(engine, "late")
    assert entry is not None
    assert (entry.superseded_by, entry.outcome) == ("direct", "REVOKED")
    assert deferred.lookup(engine, "never") is None
