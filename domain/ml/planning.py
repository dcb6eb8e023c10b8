"""Slaughter planning: lots not yet slaughtered are assigned to days under per-site capacity.

An exact mixed-integer program (scipy's HiGHS): x[l, d] = 1 when lot l is slaughtered on day d,
each lot on exactly one of its candidate days or left unplanned at a high cost, the ducks of a
site on a day within that day's capacity, minimising the total distance (days) to each lot's
ideal date. Candidate days are the window days within MAX_SHIFT_DAYS of the ideal date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import InvalidInput
from domain.models import Lot, LotStatus, Site, SlaughterCapacity

MAX_SHIFT_DAYS = 7
#: Leaving a lot unplanned costs more than any shift, so it happens only when capacity lacks.
UNPLANNED_COST = 10 * MAX_SHIFT_DAYS
MAX_WINDOW_DAYS = 120


@dataclass(frozen=True)
class PlanLot:
    lot_id: int
    code: str
    site: str
    ducks: int
    ideal: date


def load_problem(
    session: Session, *, start: date, end: date
) -> tuple[list[PlanLot], dict[tuple[str, date], int]]:
    if end < start:
        raise InvalidInput(f"date_fin {end} is before date_debut {start}")
    if (end - start).days > MAX_WINDOW_DAYS:
        raise InvalidInput(f"window of {(end - start).days} days; at most {MAX_WINDOW_DAYS}")
    lots_query = (
        select(Lot, Site.code)
        .join(Site, Site.id == Lot.site_id)
        .where(
            Lot.status.in_([LotStatus.FEEDING.value, LotStatus.FINISHED.value]),
            Lot.ideal_slaughter_date.between(
                start - timedelta(days=MAX_SHIFT_DAYS), end + timedelta(days=MAX_SHIFT_DAYS)
            ),
        )
        .order_by(Lot.id)
    )
    lots = [
        PlanLot(lot.id, lot.code, code, lot.ducks_end or lot.ducks_start, lot.ideal_slaughter_date)
        for lot, code in session.execute(lots_query).tuples()
    ]
    capacity_query = (
        select(Site.code, SlaughterCapacity.day, SlaughterCapacity.capacity_ducks)
        .join(Site, Site.id == SlaughterCapacity.site_id)
        .where(SlaughterCapacity.day.between(start, end))
    )
    capacity = {(code, day): cap for code, day, cap in session.execute(capacity_query).tuples()}
    return lots, capacity


def solve(
    lots: list[PlanLot], capacity: dict[tuple[str, date], int], *, time_limit_s: float = 60.0
) -> dict[str, Any]:
    """The optimal plan; `unplanned` lists lots no candidate day could take."""
    if not lots:
        # Nothing finishes in the window: an empty plan is the answer (milp rejects no variables).
        return {
            "optimal": True,
            "lots": 0,
            "planned": 0,
            "unplanned": [],
            "total_shift_days": 0,
            "plan": [],
            "daily_load": [],
        }
    variables: list[tuple[int, date]] = []
    cost: list[float] = []
    for index, lot in enumerate(lots):
        for (site, day), cap in capacity.items():
            shift = abs((day - lot.ideal).days)
            if site == lot.site and shift <= MAX_SHIFT_DAYS and cap >= lot.ducks:
                variables.append((index, day))
                cost.append(float(shift))
    n_assign = len(variables)
    n_vars = n_assign + len(lots)  # one "unplanned" slack per lot
    costs = np.array(cost + [UNPLANNED_COST] * len(lots))
    keys = sorted(capacity)
    key_row = {key: row for row, key in enumerate(keys)}
    rows = len(lots) + len(keys)
    matrix = lil_matrix((rows, n_vars))
    for column, (index, day) in enumerate(variables):
        matrix[index, column] = 1.0
        matrix[len(lots) + key_row[(lots[index].site, day)], column] = lots[index].ducks
    for index in range(len(lots)):
        matrix[index, n_assign + index] = 1.0
    lower = np.concatenate([np.ones(len(lots)), np.zeros(len(keys))])
    upper = np.concatenate([np.ones(len(lots)), [capacity[key] for key in keys]])
    result = milp(
        costs,
        constraints=LinearConstraint(matrix.tocsr(), lower, upper),
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit_s},
    )
    if result.x is None:
        raise RuntimeError(f"the planning solver found no solution: {result.message}")
    chosen = np.round(result.x).astype(int)
    assigned = [
        (lots[index], day) for column, (index, day) in enumerate(variables) if chosen[column]
    ]
    plan: list[dict[str, Any]] = [
        {
            "lot_id": lot.lot_id,
            "lot_code": lot.code,
            "site": lot.site,
            "ducks": lot.ducks,
            "ideal_date": lot.ideal.isoformat(),
            "slaughter_date": day.isoformat(),
            "shift_days": (day - lot.ideal).days,
        }
        for lot, day in assigned
    ]
    unplanned = [lots[i].code for i in range(len(lots)) if chosen[n_assign + i]]
    load: dict[tuple[str, date], int] = {}
    for lot, day in assigned:
        load[(lot.site, day)] = load.get((lot.site, day), 0) + lot.ducks
    return {
        "optimal": bool(result.status == 0),
        "lots": len(lots),
        "planned": len(plan),
        "unplanned": unplanned,
        "total_shift_days": sum(abs((day - lot.ideal).days) for lot, day in assigned),
        "plan": sorted(plan, key=lambda item: (item["slaughter_date"], item["site"])),
        "daily_load": [
            {
                "site": site,
                "date": day.isoformat(),
                "ducks": ducks,
                "capacity": capacity[(site, day)],
            }
            for (site, day), ducks in sorted(load.items())
        ],
    }
