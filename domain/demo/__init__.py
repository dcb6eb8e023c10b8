"""Deterministic demo dataset of the cooperative, so every job runs on a fresh machine.

Three sites (LL, LS, MT), 60 gaveurs and 600 lots (ids 3001..3600, so lot 3472 exists) at
scale 1; `scale` multiplies gaveurs and lots. Lots start over the last ~540 days up to ten days
ahead: most are slaughtered, ~7 % are being fed today, a few are planned. The physiology and the
hidden ITM law live in domain/physiology.py, one lot's rows in domain/demo/lots.py.

The same (seed, scale, today) always gives the same rows. Rows are generated and inserted lot by
lot in chunks (SQLAlchemy Core executemany), so memory stays flat at any scale.

    python -m domain.demo --scale 1 --seed 42 --database-url sqlite:///var/gaveurs.db --if-empty
"""

from __future__ import annotations

import argparse
import json
import sys
import time as clock
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, insert, select, text, update
from sqlalchemy.orm import Session

from domain import models as m
from domain.demo.lots import GaveurHabits, LotPlan, LotRows, simulate_lot
from domain.demo.reference import FIRST_NAMES, LAST_NAMES, SITES, ascii_slug, french_holidays
from domain.errors import Conflict, InvalidInput
from domain.models import AnomalyKind, LotStatus
from domain.physiology import HIDDEN_ITM_FORMULA, ITM_NOISE_STD, hidden_itm
from domain.platform.db import is_empty, make_engine, migrate, session_factory
from domain.platform.settings import Settings

__all__ = [
    "HIDDEN_ITM_FORMULA",
    "ITM_NOISE_STD",
    "DemoSummary",
    "generate",
    "hidden_itm",
    "load_if_empty",
]

FIRST_LOT_ID = 3001
GAVEURS_PER_SCALE = 60
LOTS_PER_SCALE = 600
HISTORY_DAYS = 540
PLANNED_HORIZON_DAYS = 10
FEEDING_SHARE = 0.07
PLANNED_SHARE = 0.02
FINISHED_SHARE = 0.015
ANOMALY_SHARE = 0.03
CAPACITY_DAYS = (-30, 60)
MAX_SCALE = 200.0
# Rows buffered per table before a flush: big enough for fast executemany, small enough for
# flat memory (a SQAL sample carries 64 floats of JSON).
CHUNK_ROWS = {"records": 20_000, "samples": 2_000, "other": 5_000}
DESCRIPTION = "Load the deterministic demo dataset into a database (migrating it first)."
_LOT_STREAM = 1  # second word of the per-lot seed: keeps lot generators apart from the main one


@dataclass
class DemoSummary:
    """What `generate` inserted."""

    seed: int
    scale: float
    today: date
    sites: int = 0
    gaveurs: int = 0
    lots: int = 0
    lots_by_status: dict[str, int] = field(default_factory=dict)
    feeding_records: int = 0
    sqal_samples: int = 0
    consumer_feedback: int = 0
    slaughter_capacity: int = 0
    planted_anomalies: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["today"] = self.today.isoformat()
        return data


def _table(model: type[m.Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class _ChunkedWriter:
    """Buffers rows per table and writes them in foreign-key order when a buffer fills."""

    ORDER = (m.Lot, m.FeedingRecord, m.SqalSample, m.ConsumerFeedback, m.PlantedAnomaly)

    def __init__(self, session: Session) -> None:
        self.session = session
        self.buffers: dict[Table, list[dict[str, Any]]] = {_table(t): [] for t in self.ORDER}

    def add(self, rows: LotRows) -> None:
        self.buffers[_table(m.Lot)].append(rows.lot)
        self.buffers[_table(m.FeedingRecord)].extend(rows.records)
        self.buffers[_table(m.SqalSample)].extend(rows.samples)
        self.buffers[_table(m.ConsumerFeedback)].extend(rows.feedback)
        self.buffers[_table(m.PlantedAnomaly)].extend(rows.anomalies)
        if (
            len(self.buffers[_table(m.FeedingRecord)]) >= CHUNK_ROWS["records"]
            or len(self.buffers[_table(m.SqalSample)]) >= CHUNK_ROWS["samples"]
            or len(self.buffers[_table(m.Lot)]) >= CHUNK_ROWS["other"]
        ):
            self.flush()

    def flush(self) -> None:
        for table, rows in self.buffers.items():
            if rows:
                self.session.execute(insert(table), rows)
                rows.clear()


def generate(
    session: Session, *, seed: int = 42, scale: float = 1.0, today: date | None = None
) -> DemoSummary:
    """Insert the demo dataset into an empty, migrated database; the caller commits.

    Raises Conflict when sites already exist and InvalidInput for a scale outside (0, 200].
    """
    if not 0 < scale <= MAX_SCALE:
        raise InvalidInput(f"scale must be in (0, {MAX_SCALE:g}], got {scale}")
    if session.execute(select(m.Site.id).limit(1)).first() is not None:
        raise Conflict("the database already has sites: demo data loads into an empty database")
    today = today or date.today()
    rng = np.random.default_rng(seed)
    summary = DemoSummary(seed=seed, scale=scale, today=today, sites=len(SITES))

    session.execute(
        insert(_table(m.Site)),
        [
            {"id": i, **{k: v for k, v in asdict(s).items() if k != "slaughter_capacity"}}
            for i, s in enumerate(SITES, start=1)
        ],
    )
    gaveurs, habits = _gaveurs(rng, max(len(SITES), round(GAVEURS_PER_SCALE * scale)))
    session.execute(insert(_table(m.Gaveur)), gaveurs)
    summary.gaveurs = len(gaveurs)

    n_lots = max(3, round(LOTS_PER_SCALE * scale))
    plans = _plan_lots(rng, n_lots=n_lots, gaveurs=gaveurs, today=today)
    anomalies = _pick_anomalies(rng, plans)
    writer = _ChunkedWriter(session)
    statuses: Counter[str] = Counter()
    for plan in plans:
        lot_rng = np.random.default_rng([seed, _LOT_STREAM, plan.id])
        rows = simulate_lot(
            plan, habits[plan.gaveur_id], lot_rng, anomaly=anomalies.get(plan.id), today=today
        )
        writer.add(rows)
        statuses[plan.status.value] += 1
        summary.feeding_records += len(rows.records)
        summary.sqal_samples += len(rows.samples)
        summary.consumer_feedback += len(rows.feedback)
        summary.planted_anomalies += len(rows.anomalies)
    writer.flush()
    summary.lots = len(plans)
    summary.lots_by_status = {s.value: statuses[s.value] for s in LotStatus}

    capacity = _slaughter_capacity(rng, today)
    session.execute(insert(_table(m.SlaughterCapacity)), capacity)
    summary.slaughter_capacity = len(capacity)
    _link_anomalies_to_records(session)
    _advance_sequences(session)
    return summary


def _gaveurs(
    rng: np.random.Generator, n: int
) -> tuple[list[dict[str, Any]], dict[int, GaveurHabits]]:
    people = rng.permutation(len(FIRST_NAMES) * len(LAST_NAMES))
    rows: list[dict[str, Any]] = []
    habits: dict[int, GaveurHabits] = {}
    emails: Counter[str] = Counter()
    for index in range(n):
        gaveur_id = index + 1
        site_index = index % len(SITES)
        first = FIRST_NAMES[int(people[index % people.size]) % len(FIRST_NAMES)]
        last = LAST_NAMES[int(people[index % people.size]) // len(FIRST_NAMES)]
        local = f"{ascii_slug(first)}.{ascii_slug(last)}"
        emails[local] += 1
        suffix = "" if emails[local] == 1 else str(emails[local])
        rows.append(
            {
                "id": gaveur_id,
                "site_id": site_index + 1,
                "code": f"G{SITES[site_index].code}{index // len(SITES) + 1:03d}",
                "first_name": first,
                "last_name": last,
                "phone": f"+336{int(rng.integers(10_000_000, 100_000_000)):08d}",
                "email": f"{local}{suffix}@example.org",
                "active": bool(rng.random() > 0.05),
            }
        )
        habits[gaveur_id] = GaveurHabits(
            gaveur_id=gaveur_id,
            style=float(rng.uniform(0.9, 1.1)),
            irregularity=float(rng.uniform(0.02, 0.09)),
            efficiency=float(rng.uniform(0.17, 0.20)),
            mortality_rate=float(rng.uniform(0.0003, 0.0008)),
        )
    return rows, habits


def _plan_lots(
    rng: np.random.Generator, *, n_lots: int, gaveurs: list[dict[str, Any]], today: date
) -> list[LotPlan]:
    """Start dates, sites, gaveurs and status of every lot; ids follow the start date."""
    n_feeding = max(1, round(FEEDING_SHARE * n_lots))
    n_finished = max(1, round(FINISHED_SHARE * n_lots))
    n_planned = max(1, round(PLANNED_SHARE * n_lots))
    n_past = max(0, n_lots - n_feeding - n_finished - n_planned)
    durations = rng.integers(11, 15, n_lots)
    delays = rng.choice([0, 1, 2], size=n_lots, p=[0.6, 0.3, 0.1])
    # A handful of lots fed their last meal yesterday or the day before and wait for the
    # slaughterhouse, so "finished" lots exist whatever the seed.
    just_done = slice(n_past + n_feeding, n_past + n_feeding + n_finished)
    waited = rng.integers(0, 2, n_finished)
    delays[just_done] = waited + 1 + rng.integers(0, 2, n_finished)
    offsets = np.concatenate(
        [
            -rng.integers(11, HISTORY_DAYS + 1, n_past),
            -rng.integers(0, 11, n_feeding),  # started in the last ten days: still feeding
            -(durations[just_done] + waited),
            rng.integers(1, PLANNED_HORIZON_DAYS + 1, n_planned),
        ]
    )
    order = np.argsort(offsets, kind="stable")
    offsets, durations, delays = offsets[order], durations[order], delays[order]
    sites = rng.integers(0, len(SITES), n_lots)
    by_site: dict[int, list[int]] = {}
    for gaveur in gaveurs:
        by_site.setdefault(gaveur["site_id"] - 1, []).append(gaveur["id"])
    picks = rng.random(n_lots)
    sequence: Counter[tuple[str, str]] = Counter()
    plans = []
    for index in range(n_lots):
        site = SITES[int(sites[index])]
        start = today + timedelta(days=int(offsets[index]))
        duration = int(durations[index])
        last_day = start + timedelta(days=duration - 1)
        slaughter = start + timedelta(days=duration + int(delays[index]))
        if start > today:
            status, recorded, slaughter_date = LotStatus.PLANNED, 0, None
        elif last_day >= today:
            recorded = 2 * ((today - start).days + 1)
            status, slaughter_date = LotStatus.FEEDING, None
        elif slaughter > today:
            status, recorded, slaughter_date = LotStatus.FINISHED, 2 * duration, None
        else:
            status, recorded, slaughter_date = LotStatus.SLAUGHTERED, 2 * duration, slaughter
        month = f"{start:%y%m}"
        sequence[(site.code, month)] += 1
        candidates = by_site[int(sites[index])]
        plans.append(
            LotPlan(
                id=FIRST_LOT_ID + index,
                code=f"{site.code}{month}{sequence[(site.code, month)]:03d}",
                site_id=int(sites[index]) + 1,
                site_code=site.code,
                gaveur_id=candidates[int(picks[index] * len(candidates))],
                start_date=start,
                duration_days=duration,
                status=status,
                slaughter_date=slaughter_date,
                recorded_meals=recorded,
            )
        )
    return plans


def _pick_anomalies(rng: np.random.Generator, plans: list[LotPlan]) -> dict[int, AnomalyKind]:
    """About 3 % of the lots with enough records, every kind at least once."""
    eligible = [plan.id for plan in plans if plan.recorded_meals >= 6]
    kinds = list(AnomalyKind)
    count = min(len(eligible), max(len(kinds), round(ANOMALY_SHARE * len(plans))))
    chosen = rng.choice(eligible, size=count, replace=False).tolist() if count else []
    return {int(lot_id): kinds[i % len(kinds)] for i, lot_id in enumerate(chosen)}


def _slaughter_capacity(rng: np.random.Generator, today: date) -> list[dict[str, Any]]:
    first, last = CAPACITY_DAYS
    days = [today + timedelta(days=offset) for offset in range(first, last + 1)]
    holidays = set().union(*(french_holidays(year) for year in {d.year for d in days}))
    weekday_factor = (1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.3)  # Saturday reduced, Sunday skeleton
    rows = []
    for site_id, site in enumerate(SITES, start=1):
        for day in days:
            noise = float(rng.uniform(0.95, 1.05))
            capacity = site.slaughter_capacity * weekday_factor[day.weekday()] * noise
            if day in holidays:
                capacity = 0.0
            rows.append(
                {"site_id": site_id, "day": day, "capacity_ducks": int(round(capacity / 50) * 50)}
            )
    return rows


def _link_anomalies_to_records(session: Session) -> None:
    """Point each planted anomaly at its feeding record, known only once the records exist."""
    record = m.FeedingRecord
    anomaly = m.PlantedAnomaly
    record_id = (
        select(record.id)
        .where(
            record.lot_id == anomaly.lot_id,
            record.day == anomaly.day,
            record.meal == anomaly.meal,
        )
        .scalar_subquery()
    )
    session.execute(
        update(_table(anomaly))
        .where(anomaly.feeding_record_id.is_(None), anomaly.day.is_not(None))
        .values(feeding_record_id=record_id)
    )


def _advance_sequences(session: Session) -> None:
    """PostgreSQL serials do not see explicit ids: move them past the rows just inserted."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("sites", "gaveurs", "lots"):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
        )


def load_if_empty(
    engine: Engine, *, seed: int = 42, scale: float = 1.0, today: date | None = None
) -> DemoSummary | None:
    """Generate and commit the demo data unless the (migrated) database already has sites."""
    if not is_empty(engine):
        return None
    with session_factory(engine)() as session, session.begin():
        return generate(session, seed=seed, scale=scale, today=today)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domain.demo", description=DESCRIPTION)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL setting")
    parser.add_argument("--if-empty", action="store_true", help="do nothing if data exists")
    args = parser.parse_args(argv)

    url = args.database_url or Settings().database_url
    started = clock.perf_counter()
    migrate(url)
    engine = make_engine(url)
    try:
        if args.if_empty:
            summary = load_if_empty(engine, seed=args.seed, scale=args.scale, today=args.today)
        else:
            with session_factory(engine)() as session, session.begin():
                summary = generate(session, seed=args.seed, scale=args.scale, today=args.today)
    except (Conflict, InvalidInput) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if summary is None:
        print(json.dumps({"loaded": False, "reason": "database not empty"}))
        return 0
    report = {"loaded": True, **summary.as_dict()}
    report["seconds"] = round(clock.perf_counter() - started, 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
