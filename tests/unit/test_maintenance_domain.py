"""Backup, cleanup, weekly KPIs and SQAL ingest on real SQLite demo databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain import cleanup, kpis
from domain.errors import NotFound
from domain.ingest import SqalBatch, quality_verdict, store_batch
from domain.models import (
    Lot,
    NotificationOutbox,
    SqalSample,
    StoredFile,
    WeeklyKpi,
)
from domain.platform import backup, db
from tests.support.sqal import sqal_batch

NOW = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)


def test_backup_restores_to_the_same_row_counts(
    unit_fresh_demo: Callable[..., Engine], tmp_path: Path
) -> None:
    # Given a demo database and three earlier backups, keeping 3
    engine = unit_fresh_demo()
    backups = tmp_path / "backups"
    for stamp in ("20260101T030000Z", "20260102T030000Z", "20260103T030000Z"):
        (backups / f"gaveurs-{stamp}.sqlite3").parent.mkdir(parents=True, exist_ok=True)
        (backups / f"gaveurs-{stamp}.sqlite3").write_bytes(b"old")
    # When it is backed up
    made = backup.backup_database(engine, backups, keep=3, now=NOW)
    # Then the copy is verified, described, and the oldest backup rotated out
    assert Path(made.path).name == "gaveurs-20260108T120000Z.sqlite3"
    assert made.sha256 == backup.sha256_of(Path(made.path))
    assert made.tables["lots"] == 30 and made.tables["alembic_version"] == 1
    assert [Path(p).name for p in made.rotated_out] == ["gaveurs-20260101T030000Z.sqlite3"]
    # and restoring it gives the same tables with the same row counts.
    restored = tmp_path / "restored.db"
    backup.restore_sqlite(Path(made.path), restored)
    assert backup.row_counts(db.make_engine(f"sqlite:///{restored}")) == backup.row_counts(engine)


def test_a_corrupt_backup_fails_verification(tmp_path: Path) -> None:
    broken = tmp_path / "gaveurs-x.sqlite3"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(Exception, match="integrity|malformed|not a database|alembic"):
        backup.verify_sqlite(broken)


def test_cleanup_deletes_expired_files_old_outbox_and_old_sensor_data(
    unit_fresh_demo: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = unit_fresh_demo()
    exports = tmp_path / "exports"
    (exports / "reports").mkdir(parents=True)
    (exports / "reports" / "old.pdf").write_bytes(b"%PDF old")
    (exports / "reports" / "new.pdf").write_bytes(b"%PDF new")

    def file_row(name: str, expires: datetime) -> StoredFile:
        return StoredFile(
            kind="report",
            path=f"reports/{name}",
            filename=name,
            content_type="application/pdf",
            sha256="0" * 64,
            size_bytes=8,
            expires_at=expires,
        )

    def outbox(key: str, status: str, age_days: int) -> NotificationOutbox:
        return NotificationOutbox(
            idempotency_key=key,
            channel="email",
            recipient="x@example.org",
            body="b",
            status=status,
            created_at=NOW - timedelta(days=age_days),
        )

    with db.session_factory(engine)() as session:
        session.add_all(
            [
                file_row("old.pdf", NOW - timedelta(days=1)),
                file_row("new.pdf", NOW + timedelta(days=1)),
                file_row("gone.pdf", NOW - timedelta(days=2)),
                outbox("a", "sent", 200),
                outbox("b", "pending", 200),
                outbox("c", "sent", 5),
            ]
        )
        session.commit()
        samples_before = session.scalar(select(func.count()).select_from(SqalSample))
        oldest = session.scalar(select(func.min(SqalSample.measured_at)))
        assert samples_before and oldest

        files = cleanup.delete_expired_files(session, exports, now=NOW)
        outbox_deleted = cleanup.delete_old_outbox(session, before=NOW - timedelta(days=90))
        cutoff = oldest + timedelta(days=3)
        expected_gone = session.scalar(
            select(func.count()).select_from(SqalSample).where(SqalSample.measured_at < cutoff)
        )
        sensor_deleted = cleanup.delete_old_sensor_data(session, before=cutoff)

        assert files == {"files_deleted": 2, "files_missing_on_disk": 1, "bytes_freed": 8}
        assert not (exports / "reports" / "old.pdf").exists()
        assert (exports / "reports" / "new.pdf").exists()
        assert outbox_deleted == 1  # the pending one is kept whatever its age
        assert sensor_deleted == expected_gone > 0
        assert session.scalar(select(func.count()).select_from(SqalSample)) == (
            samples_before - expected_gone
        )


def test_weekly_kpis_are_stored_per_site_and_gaveur(unit_fresh_demo: Callable[..., Engine]) -> None:
    engine = unit_fresh_demo(scale=0.1)
    with db.session_factory(engine)() as session:
        week = _busiest_slaughter_week(session)
        outcome = kpis.compute_weekly_kpis(session, week_start=week)
        again = kpis.compute_weekly_kpis(session, week_start=week)  # idempotent
        session.commit()
        rows = session.scalars(select(WeeklyKpi).where(WeeklyKpi.week_start == week)).all()
        lots = session.scalars(
            select(Lot).where(
                Lot.slaughter_date >= week, Lot.slaughter_date < week + timedelta(days=7)
            )
        ).all()
    assert outcome["lots"] == again["lots"] == len(lots) > 0
    sites = [row for row in rows if row.scope == "site"]
    assert len(rows) == outcome["sites"] + outcome["gaveurs"]
    assert sum(row.lots for row in sites) == len(lots)
    itms = [lot.itm for lot in lots if lot.itm is not None]
    site_mean = sum(r.mean_itm * r.lots for r in sites if r.mean_itm) / len(lots)
    assert site_mean == pytest.approx(sum(itms) / len(itms), rel=0.01)
    for row in rows:
        if row.samples:
            assert sum(row.grade_mix.values()) == pytest.approx(1.0, abs=0.01)


def _busiest_slaughter_week(session: Session) -> date:
    days = session.scalars(select(Lot.slaughter_date).where(Lot.slaughter_date.is_not(None))).all()
    weeks = [kpis.week_of(day) for day in days if day]
    return max(set(weeks), key=weeks.count)


def _batch(lot_id: int, grades: list[str], batch_id: str = "b1") -> SqalBatch:
    return SqalBatch.model_validate(
        sqal_batch(lot_id, grades, batch_id=batch_id, device_id="TEST-DEVICE-9")
    )


def test_ingest_stores_a_batch_once_and_flags_a_grade_drop(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    engine = unit_fresh_demo(scale=0.1)
    with db.session_factory(engine)() as session:
        lot_id = session.scalars(select(Lot.id).order_by(Lot.id)).first()
        assert lot_id is not None
        good = store_batch(session, _batch(lot_id, ["A+", "A", "A", "B"], "good"))
        session.commit()
        again = store_batch(session, _batch(lot_id, ["A+", "A", "A", "B"], "good"))
        bad = store_batch(session, _batch(lot_id, ["C", "C", "B", "C"], "bad"))
        session.commit()
        stored = session.scalar(
            select(func.count())
            .select_from(SqalSample)
            .where(SqalSample.device_id == "TEST-DEVICE-9")
        )
    assert (good.stored, again.duplicate, again.stored, stored) == (4, True, 0, 8)
    assert quality_verdict(good, bad_share_limit=0.3) is None
    assert quality_verdict(bad, bad_share_limit=0.3) == "critical"
    with db.session_factory(engine)() as session, pytest.raises(NotFound):
        store_batch(session, _batch(999_999, ["A"]))


def test_ingest_rejects_malformed_samples() -> None:
    with pytest.raises(ValueError, match="64"):
        SqalBatch.model_validate(
            {
                "device_id": "d",
                "batch_id": "b",
                "lot_id": 1,
                "samples": [
                    {
                        "measured_at": "2026-01-08T10:00:00Z",
                        "tof_zones_mm": [1.0] * 10,
                        "liver_weight_g": 500,
                        "grade": "A",
                    }
                ],
            }
        )
