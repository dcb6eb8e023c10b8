"""domain/aggregates.py: exact totals, idempotence, and only touched groups recomputed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from domain.aggregates import refresh_aggregates
from domain.models import (
    AggregateWatermark,
    FeedingRecord,
    GavageStatsDaily,
    Lot,
    LotStatus,
    SqalSample,
    SqalStatsHourly,
)
from domain.platform import db


@pytest.fixture()
def demo_engine(unit_fresh_demo: Callable[..., Engine]) -> Engine:
    return unit_fresh_demo(scale=0.05)


def _refresh(engine: Engine, *, full: bool = False) -> dict[str, Any]:
    with db.session_factory(engine)() as session, session.begin():
        return refresh_aggregates(session, full=full)


def _gavage_table(session: Session) -> dict[tuple[int, date], tuple[Any, ...]]:
    rows = session.execute(select(GavageStatsDaily)).scalars()
    return {
        (r.site_id, r.stat_date): (r.lots_active, r.records, round(r.mean_dose_g, 6),
                                   round(r.mean_weight_g, 6), round(r.mean_temperature_c, 6),
                                   r.deaths)
        for r in rows
    }  # fmt: skip


def _sqal_table(session: Session) -> dict[tuple[int, str, datetime], tuple[Any, ...]]:
    rows = session.execute(select(SqalStatsHourly)).scalars()
    return {
        (r.site_id, r.device_id, r.hour): (r.samples, round(r.mean_liver_weight_g, 6),
                                           r.grade_a_plus, r.grade_a, r.grade_b, r.grade_c)
        for r in rows
    }  # fmt: skip


def test_refresh_totals_match_the_source_rows(demo_engine: Engine) -> None:
    result = _refresh(demo_engine)
    with db.session_factory(demo_engine)() as session:
        n_records, deaths, dose_sum = session.execute(
            select(func.count(), func.sum(FeedingRecord.mortality), func.sum(FeedingRecord.dose_g))
        ).one()
        assert result["new_feeding_records"] == n_records
        assert result["gavage_groups"] == session.scalar(
            select(func.count()).select_from(GavageStatsDaily)
        )
        stats = session.execute(
            select(
                func.sum(GavageStatsDaily.records),
                func.sum(GavageStatsDaily.deaths),
                func.sum(GavageStatsDaily.mean_dose_g * GavageStatsDaily.records),
            )
        ).one()
        assert stats[0] == n_records and stats[1] == deaths
        assert stats[2] == pytest.approx(dose_sum)

        grades = dict(
            session.execute(select(SqalSample.grade, func.count()).group_by(SqalSample.grade))
            .tuples()
            .all()
        )
        sqal = session.execute(
            select(
                func.sum(SqalStatsHourly.samples),
                func.sum(SqalStatsHourly.grade_a_plus),
                func.sum(SqalStatsHourly.grade_a),
                func.sum(SqalStatsHourly.grade_b),
                func.sum(SqalStatsHourly.grade_c),
            )
        ).one()
        assert result["new_sqal_samples"] == sqal[0] == sum(grades.values())
        assert tuple(sqal[1:]) == tuple(grades.get(g, 0) for g in ("A+", "A", "B", "C"))
        # Every hour bucket is a whole UTC hour.
        hours = session.scalars(select(SqalStatsHourly.hour)).all()
        assert all(h.tzinfo == UTC and (h.minute, h.second, h.microsecond) == (0, 0, 0)
                   for h in hours)  # fmt: skip


def test_one_group_matches_a_direct_group_by(demo_engine: Engine) -> None:
    _refresh(demo_engine)
    with db.session_factory(demo_engine)() as session:
        site_id, day = session.execute(
            select(GavageStatsDaily.site_id, GavageStatsDaily.stat_date)
            .order_by(GavageStatsDaily.records.desc())
            .limit(1)
        ).one()
        direct = session.execute(
            select(
                func.count(FeedingRecord.lot_id.distinct()),
                func.count(),
                func.avg(FeedingRecord.dose_g),
                func.sum(FeedingRecord.mortality),
            )
            .join(Lot, Lot.id == FeedingRecord.lot_id)
            .where(Lot.site_id == site_id, FeedingRecord.record_date == day)
        ).one()
        row = session.get(GavageStatsDaily, (site_id, day))
        assert row is not None
        assert (row.lots_active, row.records, row.deaths) == (direct[0], direct[1], direct[3])
        assert row.mean_dose_g == pytest.approx(direct[2])


def test_second_refresh_without_new_rows_touches_nothing(demo_engine: Engine) -> None:
    _refresh(demo_engine)
    with db.session_factory(demo_engine)() as session:
        before = (_gavage_table(session), _sqal_table(session))
        marks = {m.name: m.last_id for m in session.scalars(select(AggregateWatermark))}
    again = _refresh(demo_engine)
    assert again == {
        "gavage_groups": 0, "sqal_groups": 0, "new_feeding_records": 0,
        "new_sqal_samples": 0, "full": False,
    }  # fmt: skip
    with db.session_factory(demo_engine)() as session:
        assert (_gavage_table(session), _sqal_table(session)) == before
        assert {m.name: m.last_id for m in session.scalars(select(AggregateWatermark))} == marks


def test_new_rows_for_one_site_and_day_update_only_that_group(demo_engine: Engine) -> None:
    # Given refreshed aggregates
    _refresh(demo_engine)
    with db.session_factory(demo_engine)() as session, session.begin():
        before = _gavage_table(session)
        sqal_before = _sqal_table(session)
        lot = session.scalars(
            select(Lot).where(Lot.status == LotStatus.SLAUGHTERED.value).order_by(Lot.id).limit(1)
        ).one()
        # When a late meal is recorded for that lot, the day after its last one
        new_day = lot.start_date + timedelta(days=lot.duration_days)
        session.execute(
            insert(FeedingRecord),
            [{"lot_id": lot.id, "day": lot.duration_days + 1, "meal": "morning",
              "record_date": new_day, "dose_g": 500.0, "mean_weight_g": 7600.0,
              "temperature_c": 20.0, "humidity_pct": 70.0, "mortality": 3}],
        )  # fmt: skip
        site_id = lot.site_id

    result = _refresh(demo_engine)

    # Then exactly one gavage group was recomputed, and it now includes the new meal
    assert (result["gavage_groups"], result["new_feeding_records"]) == (1, 1)
    assert (result["sqal_groups"], result["new_sqal_samples"]) == (0, 0)
    with db.session_factory(demo_engine)() as session:
        after = _gavage_table(session)
        changed = {key for key in after if after[key] != before.get(key)}
        assert changed == {(site_id, new_day)}
        old = before.get((site_id, new_day), (0, 0, 0, 0, 0, 0))
        assert after[(site_id, new_day)][1] == old[1] + 1
        assert after[(site_id, new_day)][5] == old[5] + 3
        assert _sqal_table(session) == sqal_before


def test_a_new_sqal_sample_updates_only_its_hour(demo_engine: Engine) -> None:
    _refresh(demo_engine)
    with db.session_factory(demo_engine)() as session, session.begin():
        before = _sqal_table(session)
        sample = session.scalars(select(SqalSample).order_by(SqalSample.id).limit(1)).one()
        lot = session.get(Lot, sample.lot_id)
        assert lot is not None
        at = sample.measured_at.replace(minute=59, second=59)
        session.execute(
            insert(SqalSample),
            [{"lot_id": lot.id, "device_id": sample.device_id, "measured_at": at,
              "tof_zones_mm": [120.0] * 64, "liver_weight_g": 400.0, "grade": "C"}],
        )  # fmt: skip
    result = _refresh(demo_engine)
    assert (result["sqal_groups"], result["gavage_groups"]) == (1, 0)
    with db.session_factory(demo_engine)() as session:
        after = _sqal_table(session)
        key = (lot.site_id, sample.device_id, at.replace(minute=0, second=0, microsecond=0))
        assert {k for k in after if after[k] != before.get(k)} == {key}
        assert after[key][0] == before[key][0] + 1 and after[key][5] == before[key][5] + 1


def test_full_refresh_recomputes_edits_the_incremental_one_cannot_see(
    demo_engine: Engine,
) -> None:
    first = _refresh(demo_engine)
    # An in-place correction keeps the id, so only a full refresh folds it in.
    with db.session_factory(demo_engine)() as session, session.begin():
        session.execute(update(FeedingRecord).values(mortality=FeedingRecord.mortality + 1))
    assert _refresh(demo_engine)["gavage_groups"] == 0
    full = _refresh(demo_engine, full=True)
    assert full["full"] is True and full["gavage_groups"] == first["gavage_groups"]
    assert full["new_feeding_records"] == first["new_feeding_records"]
    with db.session_factory(demo_engine)() as session:
        total = session.scalar(select(func.sum(GavageStatsDaily.deaths)))
        assert total == session.scalar(select(func.sum(FeedingRecord.mortality)))
