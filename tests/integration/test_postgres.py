"""The data layer on a real PostgreSQL: migrations, demo data, queries and aggregates."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from domain import aggregates, demo, queries
from domain.models import Base, FeedingRecord, GavageStatsDaily
from domain.platform import db
from domain.search import is_search_table
from ops.local_postgres import PostgresServer

pytestmark = pytest.mark.slow


def test_schema_demo_queries_and_aggregates_work_on_postgresql(postgres: PostgresServer) -> None:
    # Given a migrated PostgreSQL database
    url = postgres.create_database("gaveurs_test")
    db.migrate(url)
    engine = db.make_engine(url)
    with engine.connect() as connection:
        # The search tables are outside Base; tests/domain test them.
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": lambda name, kind, _: (
                    not (kind == "table" and is_search_table(name))
                )
            },
        )
        assert compare_metadata(context, Base.metadata) == []

    # When the demo data is loaded and the aggregates refreshed
    summary = demo.load_if_empty(engine, seed=7, scale=0.1, today=date(2026, 1, 8))
    assert summary is not None and summary.lots == 60
    with db.session_factory(engine)() as session, session.begin():
        outcome = aggregates.refresh_aggregates(session)

    # Then reads and aggregates agree with the raw rows
    with db.session_factory(engine)() as session:
        total, lots = queries.list_lots(session, limit=5)
        assert total == 60 and [lot["id"] for lot in lots] == [3001, 3002, 3003, 3004, 3005]
        assert {site["code"] for site in queries.list_sites(session)} == {"LL", "LS", "MT"}
        records = session.scalar(select(func.count()).select_from(FeedingRecord))
        aggregated = session.scalar(select(func.sum(GavageStatsDaily.records)))
        assert records == summary.feeding_records == aggregated
    assert outcome["new_feeding_records"] == summary.feeding_records
    db.ping(engine)
    engine.dispose()


def test_the_audit_trail_is_append_only_and_its_writer_role_may_only_insert(
    postgres: PostgresServer,
) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from domain.platform import audit

    # Given a migrated database and a login role granted the trail's writer role
    url = postgres.create_database("gaveurs_audit")
    db.migrate(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE ROLE audit_app LOGIN")
        connection.exec_driver_sql("GRANT gaveurs_audit_writer TO audit_app")
        audit.record(
            db.session_factory(engine)(bind=connection),
            audit.Processing("send_email", "notification", "k-1"),
            [audit.gaveur(1)],
        )
    parts = make_url(url)
    writer = psycopg.connect(
        host=parts.host, port=parts.port, user="audit_app", dbname=parts.database, autocommit=True
    )
    try:
        # When it appends a row, the database takes it (INSERT ... ON CONFLICT DO NOTHING too)
        row = (
            "INSERT INTO processing_audit (at, job, subject, purpose, outcome, dedupe_key) "
            "VALUES (now(), 'j', 'gaveur:2', 'p', 'done', %s) ON CONFLICT DO NOTHING"
        )
        writer.execute(row, ("k-2",))
        writer.execute(row, ("k-2",))
        # but it may not read, change, delete or empty the trail
        for statement in (
            "SELECT * FROM processing_audit",
            "UPDATE processing_audit SET outcome = 'forged'",
            "DELETE FROM processing_audit",
            "TRUNCATE processing_audit",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                writer.execute(statement)
    finally:
        writer.close()
    # And even the owner (the application's role) cannot rewrite history: the triggers refuse
    for statement in (
        "UPDATE processing_audit SET outcome = 'forged'",
        "DELETE FROM processing_audit",
        "TRUNCATE processing_audit",
    ):
        with engine.begin() as connection, pytest.raises(Exception, match="append-only"):
            connection.exec_driver_sql(statement)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT subject, outcome FROM processing_audit ORDER BY id"
        ).all()
    assert [tuple(r) for r in rows] == [("gaveur:1", "done"), ("gaveur:2", "done")]
    engine.dispose()
