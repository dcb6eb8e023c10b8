"""Weekly KPIs per site and per gaveur: lots slaughtered that week, ITM, mortality, grade mix."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from domain.models import ConsumerFeedback, Grade, KpiScope, Lot, SqalSample, WeeklyKpi


def week_of(day: date) -> date:
    """The Monday starting `day`'s week."""
    return day - timedelta(days=day.weekday())


def previous_week(today: date) -> date:
    return week_of(today) - timedelta(days=7)


@dataclass
class _Tally:
    site_id: int
    lots: int = 0
    ducks: int = 0
    dead: int = 0
    itm_sum: float = 0.0
    itm_n: int = 0
    grades: Counter[str] = field(default_factory=Counter)
    rating_sum: float = 0.0
    rating_n: int = 0

    def row(self, week_start: date, scope: KpiScope, ref_id: int) -> WeeklyKpi:
        samples = sum(self.grades.values())
        return WeeklyKpi(
            week_start=week_start,
            scope=scope.value,
            ref_id=ref_id,
            site_id=self.site_id,
            lots=self.lots,
            ducks=self.ducks,
            mean_itm=round(self.itm_sum / self.itm_n, 3) if self.itm_n else None,
            mortality_pct=round(100 * self.dead / self.ducks, 2) if self.ducks else None,
            samples=samples,
            grade_mix={
                grade.value: round(self.grades[grade.value] / samples, 4) if samples else 0.0
                for grade in Grade
            },
            mean_rating=round(self.rating_sum / self.rating_n, 2) if self.rating_n else None,
        )


def compute_weekly_kpis(session: Session, *, week_start: date) -> dict[str, Any]:
    """Recompute and store the KPIs of the week starting `week_start` (idempotent)."""
    if week_start.weekday() != 0:
        week_start = week_of(week_start)
    week_end = week_start + timedelta(days=7)
    lots = session.scalars(
        select(Lot).where(Lot.slaughter_date >= week_start, Lot.slaughter_date < week_end)
    ).all()
    by_lot = {lot.id: lot for lot in lots}
    sites: dict[int, _Tally] = {}
    gaveurs: dict[int, _Tally] = {}
    for lot in lots:
        for tally in (
            sites.setdefault(lot.site_id, _Tally(lot.site_id)),
            gaveurs.setdefault(lot.gaveur_id, _Tally(lot.site_id)),
        ):
            tally.lots += 1
            tally.ducks += lot.ducks_start
            tally.dead += lot.ducks_start - (
                lot.ducks_end if lot.ducks_end is not None else lot.ducks_start
            )
            if lot.itm is not None:
                tally.itm_sum += lot.itm
                tally.itm_n += 1
    if by_lot:
        grades = session.execute(
            select(SqalSample.lot_id, SqalSample.grade, func.count())
            .where(SqalSample.lot_id.in_(by_lot))
            .group_by(SqalSample.lot_id, SqalSample.grade)
        ).all()
        for lot_id, grade, count in grades:
            lot = by_lot[lot_id]
            sites[lot.site_id].grades[grade] += count
            gaveurs[lot.gaveur_id].grades[grade] += count
        ratings = session.execute(
            select(ConsumerFeedback.lot_id, func.sum(ConsumerFeedback.rating), func.count())
            .where(ConsumerFeedback.lot_id.in_(by_lot))
            .group_by(ConsumerFeedback.lot_id)
        ).all()
        for lot_id, total, count in ratings:
            lot = by_lot[lot_id]
            for tally in (sites[lot.site_id], gaveurs[lot.gaveur_id]):
                tally.rating_sum += float(total)
                tally.rating_n += int(count)
    session.execute(delete(WeeklyKpi).where(WeeklyKpi.week_start == week_start))
    rows = [tally.row(week_start, KpiScope.SITE, site_id) for site_id, tally in sites.items()]
    rows += [tally.row(week_start, KpiScope.GAVEUR, gid) for gid, tally in gaveurs.items()]
    session.add_all(rows)
    session.flush()
    return {
        "week_start": week_start.isoformat(),
        "lots": len(lots),
        "sites": len(sites),
        "gaveurs": len(gaveurs),
        "site_kpis": [
            {
                "site_id": row.site_id,
                "lots": row.lots,
                "mean_itm": row.mean_itm,
                "mortality_pct": row.mortality_pct,
                "grade_mix": row.grade_mix,
            }
            for row in rows
            if row.scope == KpiScope.SITE.value
        ],
    }
