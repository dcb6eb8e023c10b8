"""What the reports show, read from the database into plain dataclasses (no rendering here).

A lot report is small (one lot's ~28 meals, ~10 samples, a few feedbacks); a site report reads
the lots active in a period, the period's daily feeding means grouped in SQL, and ranks the
gaveurs by mean ITM (kg of maize per kg of liver: lower is better).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from domain.errors import InvalidInput
from domain.models import ConsumerFeedback, FeedingRecord, Gaveur, Grade, Lot, Site, SqalSample
from domain.physiology import TOF_GRID
from domain.queries import lot_by_id, site_by_code

GRADES = tuple(grade.value for grade in Grade)
#: A lot feeds at most 31 days: lots started this long before a period may still be active in it.
LONGEST_FEEDING = timedelta(days=31)
COMMENTS_SHOWN = 20


@dataclass(frozen=True)
class Day:
    """One feeding day of a lot: both meals' dose per duck, the evening weight, the deaths."""

    day: int
    record_date: date
    dose_g: float
    weight_g: float
    deaths: int
    temperature_c: float


@dataclass(frozen=True)
class Comment:
    created_at: datetime
    rating: int
    comment: str


@dataclass(frozen=True)
class ItmComparison:
    """The lot's ITM against the other finished lots of its site and of the cooperative."""

    lot: float | None
    site_mean: float | None
    site_lots: int
    rank: int | None
    cooperative_mean: float | None


@dataclass(frozen=True)
class LotReport:
    lot: Lot
    site: Site
    gaveur: Gaveur
    days: list[Day]
    grades: dict[str, int]
    sample_weights_g: list[float]
    tof_mean_mm: list[list[float]] | None
    ratings: dict[str, float | None]
    feedback_count: int
    comments: list[Comment]
    itm: ItmComparison

    @property
    def deaths(self) -> int:
        return sum(day.deaths for day in self.days)

    @property
    def total_dose_kg(self) -> float:
        return sum(day.dose_g for day in self.days) / 1000


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in UTC: the instants of a period of whole days."""
    if end < start:
        raise InvalidInput(f"date_fin {end} is before date_debut {start}")
    if end == date.max:  # its end instant, the next midnight, is past Python's last date
        raise InvalidInput(f"date_fin must be before {date.max}")
    return (
        datetime.combine(start, time(0), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC),
    )


def _days(session: Session, lot_id: int) -> list[Day]:
    rows = session.execute(
        select(
            FeedingRecord.day,
            FeedingRecord.meal,
            FeedingRecord.record_date,
            FeedingRecord.dose_g,
            FeedingRecord.mean_weight_g,
            FeedingRecord.mortality,
            FeedingRecord.temperature_c,
        )
        .where(FeedingRecord.lot_id == lot_id)
        .order_by(FeedingRecord.day, FeedingRecord.meal.desc())  # morning, then evening
    ).all()
    by_day: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_day[row.day].append(row)
    return [
        Day(
            day=day,
            record_date=meals[0].record_date,
            dose_g=round(sum(m.dose_g for m in meals), 1),
            weight_g=meals[-1].mean_weight_g,
            deaths=sum(m.mortality for m in meals),
            temperature_c=round(sum(m.temperature_c for m in meals) / len(meals), 1),
        )
        for day, meals in sorted(by_day.items())
    ]


def _itm(session: Session, lot: Lot) -> ItmComparison:
    finished = session.execute(select(Lot.site_id, Lot.itm).where(Lot.itm.is_not(None))).all()
    site = sorted(itm for site_id, itm in finished if site_id == lot.site_id)
    every = [itm for _, itm in finished]
    return ItmComparison(
        lot=lot.itm,
        site_mean=round(sum(site) / len(site), 3) if site else None,
        site_lots=len(site),
        rank=site.index(lot.itm) + 1 if lot.itm is not None and lot.itm in site else None,
        cooperative_mean=round(sum(every) / len(every), 3) if every else None,
    )


def load_lot(session: Session, lot_id: int) -> LotReport:
    lot = lot_by_id(session, lot_id)
    site = session.get(Site, lot.site_id)
    gaveur = session.get(Gaveur, lot.gaveur_id)
    assert site is not None and gaveur is not None
    samples = session.execute(
        select(SqalSample.grade, SqalSample.liver_weight_g, SqalSample.tof_zones_mm)
        .where(SqalSample.lot_id == lot_id)
        .order_by(SqalSample.measured_at)
    ).all()
    grades = Counter(sample.grade for sample in samples)
    tof = None
    if samples:
        mean = np.mean(np.array([s.tof_zones_mm for s in samples], dtype=float), axis=0)
        tof = np.round(mean.reshape(TOF_GRID, TOF_GRID), 1).tolist()
    ratings = session.execute(
        select(
            func.count(ConsumerFeedback.id),
            func.avg(ConsumerFeedback.rating),
            func.avg(ConsumerFeedback.texture),
            func.avg(ConsumerFeedback.taste),
        ).where(ConsumerFeedback.lot_id == lot_id)
    ).one()
    comments = session.execute(
        select(ConsumerFeedback.created_at, ConsumerFeedback.rating, ConsumerFeedback.comment)
        .where(ConsumerFeedback.lot_id == lot_id)
        .order_by(ConsumerFeedback.created_at.desc())
        .limit(COMMENTS_SHOWN)
    ).all()
    return LotReport(
        lot=lot,
        site=site,
        gaveur=gaveur,
        days=_days(session, lot_id),
        grades={grade: grades.get(grade, 0) for grade in GRADES},
        sample_weights_g=[sample.liver_weight_g for sample in samples],
        tof_mean_mm=tof,
        ratings={
            name: round(float(value), 2) if value is not None else None
            for name, value in zip(("rating", "texture", "taste"), ratings[1:], strict=True)
        },
        feedback_count=int(ratings[0]),
        comments=[Comment(c.created_at, c.rating, c.comment) for c in comments],
        itm=_itm(session, lot),
    )


@dataclass(frozen=True)
class SiteLot:
    id: int
    code: str
    gaveur_code: str
    gaveur_name: str
    start_date: date
    duration_days: int
    status: str
    ducks_start: int
    ducks_end: int | None
    itm: float | None
    mortality_pct: float | None
    mean_liver_weight_g: float | None

    @property
    def end_date(self) -> date:
        return self.start_date + timedelta(days=self.duration_days - 1)


@dataclass(frozen=True)
class TrendPoint:
    day: date
    mean_dose_g: float
    mean_weight_g: float
    deaths: int


@dataclass(frozen=True)
class GaveurRank:
    rank: int
    code: str
    name: str
    phone: str
    lots: int
    mean_itm: float | None
    mortality_pct: float | None


@dataclass(frozen=True)
class SiteReport:
    site: Site
    date_debut: date
    date_fin: date
    lots: list[SiteLot]
    trend: list[TrendPoint]
    ranking: list[GaveurRank]
    grades: dict[str, int]
    kpis: dict[str, float | int | None] = field(default_factory=dict)


def _site_lots(session: Session, site: Site, start: date, end: date) -> list[SiteLot]:
    rows = session.execute(
        select(Lot, Gaveur)
        .join(Gaveur, Gaveur.id == Lot.gaveur_id)
        .where(
            Lot.site_id == site.id,
            Lot.start_date <= end,
            Lot.start_date >= start - LONGEST_FEEDING,
        )
        .order_by(Lot.start_date, Lot.id)
    ).all()
    lots = [
        SiteLot(
            id=lot.id,
            code=lot.code,
            gaveur_code=gaveur.code,
            gaveur_name=f"{gaveur.first_name} {gaveur.last_name}",
            start_date=lot.start_date,
            duration_days=lot.duration_days,
            status=lot.status,
            ducks_start=lot.ducks_start,
            ducks_end=lot.ducks_end,
            itm=lot.itm,
            mortality_pct=lot.mortality_pct,
            mean_liver_weight_g=lot.mean_liver_weight_g,
        )
        for lot, gaveur in rows
    ]
    return [lot for lot in lots if lot.end_date >= start]


def _ranking(session: Session, site: Site, lots: list[SiteLot]) -> list[GaveurRank]:
    by_gaveur: dict[str, list[SiteLot]] = defaultdict(list)
    for lot in lots:
        by_gaveur[lot.gaveur_code].append(lot)
    phones: dict[str, str] = dict(
        session.execute(select(Gaveur.code, Gaveur.phone).where(Gaveur.site_id == site.id))
        .tuples()
        .all()
    )

    def figures(own: list[SiteLot]) -> tuple[float | None, float | None]:
        return _mean([lot.itm for lot in own], 3), _mortality_pct(own)

    stats = {code: figures(own) for code, own in by_gaveur.items()}
    # Best (lowest) mean ITM first; gaveurs with no finished lot in the period last.
    order = sorted(stats, key=lambda code: (stats[code][0] is None, stats[code][0] or 0, code))
    return [
        GaveurRank(
            rank=i + 1,
            code=code,
            name=by_gaveur[code][0].gaveur_name,
            phone=phones.get(code, ""),
            lots=len(by_gaveur[code]),
            mean_itm=stats[code][0],
            mortality_pct=stats[code][1],
        )
        for i, code in enumerate(order)
    ]


def load_site(session: Session, site_code: str, start: date, end: date) -> SiteReport:
    """The site's lots feeding at any time in [start, end], its daily trend and gaveur ranking."""
    since, until = period_bounds(start, end)
    site = site_by_code(session, site_code)
    lots = _site_lots(session, site, start, end)
    trend = [
        TrendPoint(row.record_date, round(row.dose, 1), round(row.weight, 1), int(row.deaths))
        for row in session.execute(
            select(
                FeedingRecord.record_date,
                func.avg(FeedingRecord.dose_g).label("dose"),
                func.avg(FeedingRecord.mean_weight_g).label("weight"),
                func.sum(FeedingRecord.mortality).label("deaths"),
            )
            .join(Lot, Lot.id == FeedingRecord.lot_id)
            .where(Lot.site_id == site.id, FeedingRecord.record_date.between(start, end))
            .group_by(FeedingRecord.record_date)
            .order_by(FeedingRecord.record_date)
        )
    ]
    site_lot_ids = select(Lot.id).where(Lot.site_id == site.id).scalar_subquery()
    grade_rows = session.execute(
        select(SqalSample.grade, func.count())
        .where(
            SqalSample.lot_id.in_(site_lot_ids),
            SqalSample.measured_at >= since,
            SqalSample.measured_at < until,
        )
        .group_by(SqalSample.grade)
    ).all()
    grades = {grade: 0 for grade in GRADES} | {grade: int(n) for grade, n in grade_rows}
    rating = session.scalar(
        select(func.avg(ConsumerFeedback.rating)).where(
            ConsumerFeedback.lot_id.in_(site_lot_ids),
            ConsumerFeedback.created_at >= since,
            ConsumerFeedback.created_at < until,
        )
    )
    finished = [lot for lot in lots if lot.itm is not None]
    samples = sum(grades.values())
    kpis: dict[str, float | int | None] = {
        "lots": len(lots),
        "lots_finished": len(finished),
        "ducks": sum(lot.ducks_start for lot in lots),
        "deaths_in_period": sum(point.deaths for point in trend),
        "mortality_pct": _mortality_pct(lots),
        "mean_itm": _mean([lot.itm for lot in finished], 3),
        "mean_liver_weight_g": _mean([lot.mean_liver_weight_g for lot in finished], 1),
        "mean_dose_g": _mean([point.mean_dose_g for point in trend], 1),
        "sqal_samples": samples,
        "grade_a_share_pct": (
            round(100 * (grades["A+"] + grades["A"]) / samples, 1) if samples else None
        ),
        "mean_rating": round(float(rating), 2) if rating is not None else None,
    }
    return SiteReport(
        site=site,
        date_debut=start,
        date_fin=end,
        lots=lots,
        trend=trend,
        ranking=_ranking(session, site, lots),
        grades=grades,
        kpis=kpis,
    )


def _mortality_pct(lots: list[SiteLot]) -> float | None:
    """Deaths over ducks of the lots whose feeding is over (their end count is known)."""
    done = [lot for lot in lots if lot.ducks_end is not None]
    ducks = sum(lot.ducks_start for lot in done)
    dead = sum(lot.ducks_start - (lot.ducks_end or 0) for lot in done)
    return round(100 * dead / ducks, 2) if ducks else None


def _mean(values: list[float | None], digits: int) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present) / len(present), digits) if present else None
