"""The job journal's writes (domain/platform/journal.py) on a real PostgreSQL: its end-of-job
upsert is compiled once and sent as driver SQL, so the dialect's placeholders and timestamp
conversion must hold there as on SQLite (tests/unit/test_journal.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from domain.models import JournalEntry
from domain.platform import db, journal
from ops.local_postgres import PostgresServer

pytestmark = pytest.mark.slow

T0 = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_ends_are_upserted_first_outcome_wins_and_read_back_in_utc(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database("gaveurs_journal")
    db.migrate(url)
    engine = db.make_engine(url)
    journal.record_accepted(engine, [journal.Accepted("a", "noop", "default", "{}", T0)])
    # An end for a known entry, and one for an entry whose acceptance comes later.
    later = T0 + timedelta(seconds=2)
    journal.record_finished(
        engine,
        [
            journal.Finished("a", "noop", "default", "SUCCESS", later),
            journal.Finished("b", "noop", "default", "FAILURE", later),
        ],
    )
    journal.record_finished(engine, [journal.Finished("a", "noop", "default", "REVOKED", later)])
    journal.record_accepted(engine, [journal.Accepted("b", "noop", "default", "{}", T0)])
    with Session(engine) as session:
        a, b = session.get(JournalEntry, "a"), session.get(JournalEntry, "b")
    assert a is not None and b is not None
    assert (a.outcome, a.finished_at, a.accepted_at, a.body) == ("SUCCESS", later, T0, "{}")
    assert (b.outcome, b.finished_at, b.accepted_at, b.body) == ("FAILURE", later, later, "")
    engine.dispose()
