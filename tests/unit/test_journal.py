"""The job journal (domain/platform/journal.py) on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.models import JournalEntry
from domain.platform import db, journal

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path}/journal.db"
    db.migrate(url)
    return db.make_engine(url)


def _accepted(task_id: str, at: datetime) -> journal.Accepted:
    return journal.Accepted(task_id, "rel_effect", "default", f'{{"id":"{task_id}"}}', at)


def _unfinished(engine: Engine, **window: object) -> list[str]:
    with Session(engine) as session:
        rows = journal.unfinished(
            session,
            accepted_after=T0 - timedelta(days=1),
            accepted_before=T0 + timedelta(days=1),
            **window,  # type: ignore[arg-type]
        )
        return [row.task_id for row in rows]


def test_accepted_entries_are_inserted_once_and_finished_ones_leave_the_unfinished_list(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    journal.record_accepted(engine, [_accepted("a", T0), _accepted("b", T0)])
    journal.record_accepted(engine, [_accepted("a", T0 + timedelta(seconds=5))])  # a resend
    journal.record_finished(engine, [journal.Finished("a", "rel_effect", "default", "SUCCESS", T0)])
    assert _unfinished(engine, cursor=None, limit=10) == ["b"]
    with Session(engine) as session:
        assert session.get(JournalEntry, "a").outcome == "SUCCESS"  # type: ignore[union-attr]


def test_an_end_written_before_its_acceptance_is_kept(tmp_path: Path) -> None:
    # The worker flushes the end before the API process flushes the acceptance.
    engine = _engine(tmp_path)
    journal.record_finished(
        engine, [journal.Finished("late", "rel_effect", "default", "SUCCESS", T0)]
    )
    journal.record_accepted(engine, [_accepted("late", T0 - timedelta(seconds=1))])
    assert _unfinished(engine, cursor=None, limit=10) == []


def test_an_end_is_stored_as_the_orm_stores_a_time(tmp_path: Path) -> None:
    # The end goes as driver SQL: its times must be the text SQLAlchemy writes and compares.
    engine = _engine(tmp_path)
    journal.record_finished(engine, [journal.Finished("e", "rel_effect", "default", "SUCCESS", T0)])
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT accepted_at, finished_at FROM job_journal")
        assert stored.one() == ("2026-12-01 12:00:00.000000",) * 2
    with Session(engine) as session:
        entry = session.get(JournalEntry, "e")
        assert entry is not None and entry.finished_at == T0


def test_an_end_in_another_zone_with_microseconds_is_stored_in_utc_as_the_orm_stores_it(
    tmp_path: Path,
) -> None:
    # The SQLite conversion is a fast twin of SQLAlchemy's: same text, same instant read back.
    engine = _engine(tmp_path)
    paris = timezone(timedelta(hours=1))
    ended = datetime(2026, 12, 1, 13, 0, 0, 7, tzinfo=paris)
    journal.record_finished(
        engine, [journal.Finished("z", "rel_effect", "default", "SUCCESS", ended)]
    )
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT finished_at FROM job_journal").scalar_one()
    assert stored == "2026-12-01 12:00:00.000007"
    with Session(engine) as session:
        entry = session.get(JournalEntry, "z")
        assert entry is not None and entry.finished_at == ended


def test_a_naive_end_is_refused(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    naive = journal.Finished("n", "rel_effect", "default", "SUCCESS", datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        journal.record_finished(engine, [naive])


def test_an_acceptance_is_stored_as_the_orm_stores_it(tmp_path: Path) -> None:
    # Accepted rows go as driver SQL too: the same text for times, the client kept.
    engine = _engine(tmp_path)
    entry = journal.Accepted("c", "rel_effect", "default", "{}", T0, client="console")
    journal.record_accepted(engine, [entry, _accepted("d", T0 + timedelta(seconds=1))])
    with engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT task_id, accepted_at, client FROM job_journal ORDER BY task_id"
        )
        assert stored.all() == [
            ("c", "2026-12-01 12:00:00.000000", "console"),
            ("d", "2026-12-01 12:00:01.000000", None),
        ]
    with Session(engine) as session:
        found = session.get(JournalEntry, "c")
        assert found is not None and (found.accepted_at, found.body) == (T0, "{}")
        assert found.finished_at is None and found.deferred_at is None


def test_the_first_outcome_wins(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    journal.record_accepted(engine, [_accepted("x", T0)])
    for outcome in ("FAILURE", "SUCCESS"):
        journal.record_finished(
            engine, [journal.Finished("x", "rel_effect", "default", outcome, T0)]
        )
    with Session(engine) as session:
        assert session.get(JournalEntry, "x").outcome == "FAILURE"  # type: ignore[union-attr]


def test_unfinished_entries_are_walked_in_order_from_a_cursor(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    # Two entries share an instant: the task id breaks the tie, so none is skipped or repeated.
    entries = [_accepted(f"t{i}", T0 + timedelta(seconds=i // 2)) for i in range(7)]
    journal.record_accepted(engine, entries)
    seen: list[str] = []
    cursor = None
    while page := _unfinished(engine, cursor=cursor, limit=3):
        seen += page
        last = next(e for e in entries if e.task_id == page[-1])
        cursor = journal.Cursor(last.accepted_at, last.task_id)
    assert seen == [f"t{i}" for i in range(7)]


def test_old_entries_are_deleted(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    journal.record_accepted(
        engine, [_accepted("old", T0 - timedelta(days=10)), _accepted("new", T0)]
    )
    with Session(engine) as session:
        assert journal.delete_old(session, before=T0 - timedelta(days=7)) == 1
    assert _unfinished(engine, cursor=None, limit=10) == ["new"]
