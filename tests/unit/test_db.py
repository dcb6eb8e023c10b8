"""domain/platform/db.py and the initial migration: schema, SQLite pragmas, ping, emptiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, UniqueConstraint, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from domain.errors import ServiceUnavailable, TransientError
from domain.models import Base, Gaveur, Site, StoredFile
from domain.platform import db
from domain.search import is_search_table


def _migrated(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    db.migrate(url)
    return url, db.make_engine(url)


def _not_search(name: str | None, type_: str, parent_names: object) -> bool:
    # The search tables are outside Base (domain/search/schema.py); test_search_schema covers them.
    return not (type_ == "table" and is_search_table(name))


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_search}
        )
        return list(compare_metadata(context, Base.metadata))


def test_migrate_creates_exactly_the_model_tables(tmp_path: Path) -> None:
    # Given an empty SQLite file, when migrated twice (the second run must be a no-op)
    url, engine = _migrated(tmp_path)
    db.migrate(url)

    # Then the tables, columns, types, indexes and constraints are those of the models
    assert _schema_diff(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert {t for t in tables if not is_search_table(t)} == set(Base.metadata.tables) | {
        "alembic_version"
    }
    # and the database sits at the single head revision.
    head = ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
    with engine.connect() as connection:
        assert head is not None
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_schema_comparison_sees_drift(tmp_path: Path) -> None:
    # The comparison above is only meaningful if a missing index would be reported.
    _url, engine = _migrated(tmp_path)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_feeding_records_record_date"))
    diff = _schema_diff(engine)
    assert [entry[0] for entry in diff if isinstance(entry, tuple)] == ["add_index"]


def test_downgrade_to_base_drops_everything(tmp_path: Path) -> None:
    url, engine = _migrated(tmp_path)
    command.downgrade(db.alembic_config(url), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    _url, engine = _migrated(tmp_path)
    with engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == db.SQLITE_BUSY_TIMEOUT_MS


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    _url, engine = _migrated(tmp_path)
    orphan = {
        "site_id": 99, "code": "GXX001", "first_name": "A", "last_name": "B",
        "phone": "+33600000000", "email": "a.b@example.org",
    }  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(Gaveur), [orphan])


def test_make_engine_creates_the_parent_directory(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "gaveurs.db"
    engine = db.make_engine(f"sqlite:///{target}")
    db.ping(engine)
    assert target.parent.is_dir()
    engine.dispose()


def test_datetimes_are_stored_as_utc_and_read_back_aware(tmp_path: Path) -> None:
    _url, engine = _migrated(tmp_path)
    paris = timezone(timedelta(hours=1))
    created = datetime(2026, 1, 8, 13, 30, tzinfo=paris)
    row = {
        "kind": "report_pdf", "path": "/x.pdf", "filename": "x.pdf",
        "content_type": "application/pdf", "sha256": "0" * 64, "size_bytes": 1,
        "created_at": created,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(StoredFile), [row])
        stored = connection.execute(select(StoredFile.created_at)).scalar_one()
        raw = connection.exec_driver_sql("SELECT created_at FROM files").scalar_one()
    assert stored == created and stored.tzinfo == UTC
    assert raw.startswith("2026-01-08 12:30:00")
    # A naive datetime is refused rather than guessed.
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        connection.execute(insert(StoredFile), [{**row, "created_at": datetime(2026, 1, 8)}])


def test_ping_answers_on_a_live_database(tmp_path: Path) -> None:
    _url, engine = _migrated(tmp_path)
    db.ping(engine)


def test_ping_raises_service_unavailable_when_unreachable(tmp_path: Path) -> None:
    # A directory cannot be opened as a SQLite database: the same failure as a dead server.
    engine = db.make_engine(f"sqlite:///{tmp_path}")
    with pytest.raises(ServiceUnavailable, match="unreachable") as caught:
        db.ping(engine)
    assert isinstance(caught.value, TransientError)  # retried by workers, 503 in the API


def test_is_empty_until_a_site_exists(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = db.make_engine(url)
    assert db.is_empty(engine)  # no schema yet
    db.migrate(url)
    assert db.is_empty(engine)
    site = {
        "code": "LL", "name": "Site", "region": "Landes", "manager_name": "M",
        "manager_email": "m@example.org", "manager_phone": "+33600000000",
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(Site), [site])
    assert not db.is_empty(engine)


def test_session_factory_keeps_objects_readable_after_commit(tmp_path: Path) -> None:
    _url, engine = _migrated(tmp_path)
    with db.session_factory(engine)() as session:
        site = Site(code="MT", name="S", region="R", manager_name="M", manager_email="e",
                    manager_phone="p")  # fmt: skip
        session.add(site)
        session.commit()
    assert site.code == "MT" and site.id is not None


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:p@db.example.org/gaveurs", "postgresql+psycopg"),
        ("postgresql://u:p@db.example.org/gaveurs", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db.example.org/gaveurs", "postgresql+psycopg"),
        ("sqlite:///var/gaveurs.db", "sqlite"),
    ],
)
def test_normalize_url_picks_psycopg3_for_postgres(url: str, driver: str) -> None:
    assert db.normalize_url(url).drivername == driver


def test_models_are_the_documented_tables() -> None:
    assert {
        "sites", "gaveurs", "lots", "feeding_records", "sqal_samples", "consumer_feedback",
        "slaughter_capacity", "files", "models", "certificates", "notification_outbox",
        "gavage_stats_daily", "sqal_stats_hourly", "aggregate_watermarks", "planted_anomalies",
        "weekly_kpis", "ingest_batches", "job_journal", "workflow_journal", "api_clients",
        "processing_audit",
    } == set(Base.metadata.tables)  # fmt: skip
    record_uniques = {
        tuple(column.name for column in constraint.columns)
        for constraint in Base.metadata.tables["feeding_records"].constraints
        if isinstance(constraint, UniqueConstraint)
    }
    assert ("lot_id", "day", "meal") in record_uniques
