"""domain/demo.py: counts, determinism, identifiers, physiology and planted anomalies."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain import demo
from domain.errors import Conflict, InvalidInput
from domain.models import (
    AnomalyKind,
    Base,
    ConsumerFeedback,
    FeedingRecord,
    Gaveur,
    Lot,
    LotStatus,
    PlantedAnomaly,
    Site,
    SlaughterCapacity,
    SqalSample,
)
from domain.physiology import ITM_NOISE_STD, hidden_itm
from domain.platform import db
from tests.unit.conftest import UNIT_TODAY

LOT_CODE = re.compile(r"^(LL|LS|MT)(\d{2})(\d{2})(\d{3,})$")


def _table_digest(engine: Engine) -> str:
    """A hash of every row of every table, in primary-key order."""
    digest = hashlib.sha256()
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns))
            for row in rows:
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _anomalous_lots(session: Session) -> set[int]:
    return set(session.scalars(select(PlantedAnomaly.lot_id)))


def _records_by_lot(session: Session, statuses: tuple[LotStatus, ...]) -> dict[int, list]:
    rows = session.execute(
        select(FeedingRecord)
        .join(Lot, Lot.id == FeedingRecord.lot_id)
        .where(Lot.status.in_([s.value for s in statuses]))
        .order_by(FeedingRecord.lot_id, FeedingRecord.day, FeedingRecord.meal.desc())
    ).scalars()
    grouped: dict[int, list] = defaultdict(list)
    for record in rows:  # 'morning' sorts after 'evening': desc puts morning first
        grouped[record.lot_id].append(record)
    return grouped


def test_counts_at_a_small_scale(unit_small_demo: tuple[Engine, demo.DemoSummary]) -> None:
    engine, summary = unit_small_demo
    with db.session_factory(engine)() as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        assert (summary.sites, summary.gaveurs, summary.lots) == (3, 6, 60)
        assert count(Site) == 3 and count(Gaveur) == 6 and count(Lot) == 60
        ids = session.scalars(select(Lot.id).order_by(Lot.id)).all()
        assert ids == list(range(3001, 3061))
        assert count(FeedingRecord) == summary.feeding_records > 1000
        assert count(SqalSample) == summary.sqal_samples > 300
        assert count(ConsumerFeedback) == summary.consumer_feedback > 80
        assert count(PlantedAnomaly) == summary.planted_anomalies >= 4
        assert count(SlaughterCapacity) == summary.slaughter_capacity == 3 * 91
        assert set(summary.lots_by_status) == {s.value for s in LotStatus}
        assert all(n > 0 for n in summary.lots_by_status.values())
    assert json.dumps(summary.as_dict())  # JSON-able for the CLI and job results


def test_scale_one_has_the_documented_shape(
    unit_demo_scale1: tuple[Engine, demo.DemoSummary],
) -> None:
    _engine, summary = unit_demo_scale1
    assert (summary.gaveurs, summary.lots) == (60, 600)
    feeding_share = summary.lots_by_status["feeding"] / summary.lots
    assert 0.05 <= feeding_share <= 0.10
    assert summary.lots_by_status["planned"] >= 3 and summary.lots_by_status["finished"] >= 3
    assert 0.02 <= summary.planted_anomalies / summary.lots <= 0.05


def test_same_seed_same_rows_and_another_seed_other_rows(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    first = _table_digest(unit_fresh_demo(seed=42, name="a.db"))
    again = _table_digest(unit_fresh_demo(seed=42, name="b.db"))
    other = _table_digest(unit_fresh_demo(seed=43, name="c.db"))
    assert first == again
    assert other != first


def test_lot_3472_exists_with_a_site_year_month_code(unit_demo_session: Session) -> None:
    lot = unit_demo_session.get(Lot, 3472)
    assert lot is not None
    match = LOT_CODE.match(lot.code)
    assert match is not None, lot.code
    assert (match[2], match[3]) == (f"{lot.start_date:%y}", f"{lot.start_date:%m}")
    # The seed documents' example lot exists too when today is 8 January 2026.
    assert unit_demo_session.scalar(select(Lot.id).where(Lot.code == "LL2601001")) is not None


def test_lot_codes_number_lots_per_site_and_month(unit_demo_session: Session) -> None:
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for lot, site_code in unit_demo_session.execute(
        select(Lot, Site.code).join(Site, Site.id == Lot.site_id).order_by(Lot.id)
    ).tuples():
        match = LOT_CODE.match(lot.code)
        assert match is not None and match[1] == site_code
        seen[(site_code, match[2] + match[3])] += 1
        assert int(match[4]) == seen[(site_code, match[2] + match[3])]


def test_weight_rises_with_cumulative_dose(unit_demo_session: Session) -> None:
    anomalous = _anomalous_lots(unit_demo_session)
    records = _records_by_lot(unit_demo_session, (LotStatus.SLAUGHTERED,))
    correlations = []
    for lot_id, lot_records in records.items():
        if lot_id in anomalous:
            continue
        dose = np.cumsum([r.dose_g for r in lot_records])
        weight = np.array([r.mean_weight_g for r in lot_records])
        correlations.append(np.corrcoef(dose, weight)[0, 1])
        assert weight[-1] - weight[0] > 1000  # about 1.5-2.5 kg gained over the feeding
    assert min(correlations) > 0.98


def test_finished_lots_have_plausible_outcomes(unit_demo_session: Session) -> None:
    anomalous = _anomalous_lots(unit_demo_session)
    lots = unit_demo_session.scalars(
        select(Lot).where(Lot.status.in_([LotStatus.FINISHED.value, LotStatus.SLAUGHTERED.value]))
    ).all()
    records = _records_by_lot(unit_demo_session, (LotStatus.FINISHED, LotStatus.SLAUGHTERED))
    for lot in lots:
        assert lot.itm is not None and lot.total_maize_kg_per_duck is not None
        assert lot.mean_liver_weight_g is not None and lot.ducks_end is not None
        assert 8.0 <= lot.itm <= 25.0
        assert 7.5 <= lot.total_maize_kg_per_duck <= 14.0
        assert 6500 <= (lot.final_weight_g or 0) <= 8600
        assert lot.mean_liver_weight_g == pytest.approx(
            1000 * lot.total_maize_kg_per_duck / lot.itm, abs=0.06
        )
        lot_records = records[lot.id]
        assert len(lot_records) == 2 * lot.duration_days
        assert lot.ducks_end == lot.ducks_start - sum(r.mortality for r in lot_records)
        if lot.id not in anomalous:
            recorded = sum(r.dose_g for r in lot_records) / 1000
            assert recorded == pytest.approx(lot.total_maize_kg_per_duck, abs=1e-3)
            assert all(14.0 <= r.temperature_c <= 28.0 for r in lot_records)
            assert all(50.0 <= r.humidity_pct <= 90.0 for r in lot_records)
    mortality = [lot.mortality_pct or 0.0 for lot in lots if lot.id not in anomalous]
    assert 1.0 <= float(np.mean(mortality)) <= 3.0


def test_hidden_itm_law_explains_the_stored_itm(unit_demo_session: Session) -> None:
    rows = unit_demo_session.execute(
        select(
            Lot.total_maize_kg_per_duck, Lot.initial_weight_g, Lot.mean_temperature_c, Lot.itm
        ).where(Lot.itm.is_not(None))
    ).all()
    features = np.array(rows, dtype=float)
    predicted = np.array([hidden_itm(d, w / 1000, t) for d, w, t, _ in features])
    observed = features[:, 3]
    r2 = 1 - np.sum((observed - predicted) ** 2) / np.sum((observed - observed.mean()) ** 2)
    assert r2 >= 0.97
    assert np.std(observed - predicted) == pytest.approx(ITM_NOISE_STD, rel=0.25)
    assert demo.hidden_itm is hidden_itm  # the law is reachable from domain.demo too


def test_planted_anomalies_are_recorded_and_visible(unit_demo_session: Session) -> None:
    anomalies = unit_demo_session.scalars(select(PlantedAnomaly)).all()
    assert {a.kind for a in anomalies} == {k.value for k in AnomalyKind}
    for anomaly in anomalies:
        assert anomaly.feeding_record_id is not None, anomaly.detail
        record = unit_demo_session.get(FeedingRecord, anomaly.feeding_record_id)
        assert record is not None
        assert (record.lot_id, record.day, record.meal) == (
            anomaly.lot_id, anomaly.day, anomaly.meal,
        )  # fmt: skip
        neighbours = unit_demo_session.scalars(
            select(FeedingRecord).where(
                FeedingRecord.lot_id == record.lot_id,
                FeedingRecord.day.between(record.day - 1, record.day + 1),
                FeedingRecord.id != record.id,
            )
        ).all()
        typical_dose = float(np.median([n.dose_g for n in neighbours]))
        typical_weight = float(np.median([n.mean_weight_g for n in neighbours]))
        if anomaly.kind == AnomalyKind.MORTALITY_SPIKE:
            assert record.mortality >= 15
        elif anomaly.kind == AnomalyKind.DOSE_ENTRY_ERROR:
            assert record.dose_g == 0 or record.dose_g > 5 * typical_dose
        elif anomaly.kind == AnomalyKind.WEIGHT_DROP:
            assert record.mean_weight_g < 0.7 * typical_weight  # lighter than at the start
        else:
            assert record.temperature_c >= 44.0


def test_records_stop_at_today_and_planned_lots_have_none(unit_demo_session: Session) -> None:
    session = unit_demo_session
    assert session.scalar(select(func.max(FeedingRecord.record_date))) == UNIT_TODAY
    for lot in session.scalars(select(Lot).where(Lot.status == LotStatus.FEEDING.value)):
        assert lot.start_date <= UNIT_TODAY <= lot.start_date + timedelta(lot.duration_days - 1)
        days = session.scalars(
            select(FeedingRecord.record_date).where(FeedingRecord.lot_id == lot.id)
        ).all()
        assert days and max(days) == UNIT_TODAY
        assert lot.itm is None and lot.ducks_end is None
    planned = select(Lot.id).where(Lot.status == LotStatus.PLANNED.value)
    first_planned = session.scalar(select(func.min(Lot.start_date)).where(Lot.id.in_(planned)))
    assert first_planned is not None and first_planned > UNIT_TODAY
    assert session.scalar(select(func.count()).where(FeedingRecord.lot_id.in_(planned))) == 0
    finished = select(Lot.id).where(Lot.status == LotStatus.FINISHED.value)
    assert session.scalar(select(func.count()).where(SqalSample.lot_id.in_(finished))) == 0


def test_sqal_samples_describe_the_liver(unit_demo_session: Session) -> None:
    samples = (
        unit_demo_session.execute(
            select(SqalSample, Lot.slaughter_date).join(Lot, Lot.id == SqalSample.lot_id)
        )
        .tuples()
        .all()
    )
    per_lot: dict[int, int] = defaultdict(int)
    for sample, slaughter_date in samples:
        per_lot[sample.lot_id] += 1
        assert sample.measured_at.date() == slaughter_date
        assert len(sample.tof_zones_mm) == 64
        if sample.grade == "C":
            assert sample.liver_weight_g < 450
    assert set(per_lot.values()) <= set(range(8, 13))
    weights = np.array([s.liver_weight_g for s, _ in samples])
    mean_distance = np.array([np.mean(s.tof_zones_mm) for s, _ in samples])
    assert np.corrcoef(weights, mean_distance)[0, 1] < -0.8  # bigger liver, closer surface
    grades = {s.grade for s, _ in samples}
    assert grades == {"A+", "A", "B", "C"}


def test_feedback_is_written_after_slaughter_and_before_today(unit_demo_session: Session) -> None:
    rows = (
        unit_demo_session.execute(
            select(ConsumerFeedback, Lot.slaughter_date).join(
                Lot, Lot.id == ConsumerFeedback.lot_id
            )
        )
        .tuples()
        .all()
    )
    assert rows
    for feedback, slaughter_date in rows:
        assert slaughter_date is not None
        assert slaughter_date < feedback.created_at.date() < UNIT_TODAY
        assert 1 <= min(feedback.rating, feedback.texture, feedback.taste)
        assert max(feedback.rating, feedback.texture, feedback.taste) <= 5
        assert feedback.comment
        assert feedback.consumer_email is None or feedback.consumer_email.endswith("@example.org")


def test_people_have_french_phones_and_example_emails(unit_demo_session: Session) -> None:
    gaveurs = unit_demo_session.scalars(select(Gaveur)).all()
    assert all(re.fullmatch(r"\+336\d{8}", g.phone) for g in gaveurs)
    assert all(re.fullmatch(r"[a-z.\-0-9]+@example\.org", g.email) for g in gaveurs)
    assert len({g.email for g in gaveurs}) == len(gaveurs)
    for site in unit_demo_session.scalars(select(Site)):
        assert site.manager_email.endswith("@example.org") and site.manager_phone.startswith("+33")


def test_slaughter_capacity_covers_every_site_and_day(unit_demo_session: Session) -> None:
    rows = unit_demo_session.scalars(select(SlaughterCapacity)).all()
    days = {r.day for r in rows}
    assert min(days) == UNIT_TODAY - timedelta(30) and max(days) == UNIT_TODAY + timedelta(60)
    assert len(rows) == 3 * len(days) == 3 * 91
    by_key = {(r.site_id, r.day): r.capacity_ducks for r in rows}
    assert all(by_key[(site, date(2026, 1, 1))] == 0 for site in (1, 2, 3))  # New Year's Day
    sunday, monday = date(2026, 1, 11), date(2026, 1, 12)
    assert all(by_key[(s, sunday)] < by_key[(s, monday)] for s in (1, 2, 3))
    assert all(2000 <= by_key[(s, monday)] <= 4000 for s in (1, 2, 3))


def test_generate_refuses_a_database_that_has_data(unit_fresh_demo: Callable[..., Engine]) -> None:
    engine = unit_fresh_demo(scale=0.02)
    with db.session_factory(engine)() as session, pytest.raises(Conflict):
        demo.generate(session, seed=1, scale=0.02, today=UNIT_TODAY)
    assert demo.load_if_empty(engine, seed=1, scale=0.02, today=UNIT_TODAY) is None


@pytest.mark.parametrize("scale", [0, -1, 1000])
def test_generate_rejects_a_bad_scale(tmp_path: Path, scale: float) -> None:
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    db.migrate(url)
    with db.session_factory(db.make_engine(url))() as session, pytest.raises(InvalidInput):
        demo.generate(session, scale=scale, today=UNIT_TODAY)


def test_load_if_empty_loads_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'once.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    summary = demo.load_if_empty(engine, seed=3, scale=0.02, today=UNIT_TODAY)
    assert summary is not None and summary.lots == 12
    assert demo.load_if_empty(engine, seed=3, scale=0.02, today=UNIT_TODAY) is None


def test_command_line_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli' / 'gaveurs.db'}"
    args = ["--scale", "0.02", "--seed", "5", "--today", "2026-01-08", "--database-url", url]
    assert demo.main([*args, "--if-empty"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loaded"] is True and report["lots"] == 12 and report["today"] == "2026-01-08"
    assert demo.main([*args, "--if-empty"]) == 0
    assert json.loads(capsys.readouterr().out)["loaded"] is False
    assert demo.main(args) == 1  # without --if-empty a non-empty database is an error
