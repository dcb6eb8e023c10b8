"""ML benchmark: wall time and peak memory of each ML job on the default demo dataset (scale 1,
seed 42), plus slaughter planning on a generated 600-lot case. Run by `python -m ops.bench`.

Each job runs in its own forked process, so its peak RSS (ru_maxrss) is its own and not the high
water mark of the jobs before it; the fork starts from the parent's loaded libraries and demo data.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from domain import demo
from domain.ml import planning, runs, symbolic
from domain.models import Lot, LotStatus, Site
from domain.platform import db

TODAY = date(2026, 1, 8)
PLANNING_LIMIT_S = 10.0
TARGETS_S = {
    "train_pysr": 60,
    "optimize_feeding_curve": 30,
    "train_prophet_90d": 5,
    "cluster_gaveurs": 3,
    "detect_anomalies": 3,
    "optimize_abattage_planning_600": 5,
}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def planning_case(
    lots: int = 600, *, slack: float, seed: int = 0
) -> tuple[list[planning.PlanLot], dict[tuple[str, date], int]]:
    """600 lots on 3 sites finishing over 60 days; daily capacity `slack` times the mean load."""
    rng = np.random.default_rng(seed)
    sites = ("LL", "LS", "MT")
    start = TODAY
    plan_lots = [
        planning.PlanLot(
            lot_id=i,
            code=f"B{i:04d}",
            site=sites[i % 3],
            ducks=int(rng.integers(150, 300)),
            ideal=start + timedelta(days=int(rng.integers(0, 60))),
        )
        for i in range(lots)
    ]
    per_day = sum(lot.ducks for lot in plan_lots) / 3 / 60
    capacity = {
        (site, start + timedelta(days=d)): int(per_day * slack)
        for site in sites
        for d in range(-planning.MAX_SHIFT_DAYS, 60 + planning.MAX_SHIFT_DAYS)
    }
    return plan_lots, capacity


def _child(fn: Callable[[], dict[str, Any]], queue: Any) -> None:
    start = time.perf_counter()
    summary = fn()
    queue.put(
        {
            "wall_s": round(time.perf_counter() - start, 3),
            "peak_rss_mb": round(rss_mb(), 1),
            **summary,
        }
    )


def measure(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn, queue))
    process.start()
    result = queue.get(timeout=600)
    process.join()
    return dict(result)


def main() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-bench-ml-"))
    url = f"sqlite:///{tmp}/demo.db"
    db.migrate(url)
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    with factory() as session, session.begin():
        summary = demo.generate(session, seed=42, scale=1.0, today=TODAY)
    # Warm the imports the jobs use, so each measurement is the job and not the import.
    import prophet  # noqa: F401
    import pyoperon  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    def run(name: str, **options: Any) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            with factory() as session:
                ctx = runs.RunContext(
                    session=session,
                    model_dir=tmp / "models",
                    task_id=None,
                    progress=lambda pct, note: None,
                    should_stop=lambda: False,
                )
                result = getattr(runs, name)(ctx, **options)
                session.commit()
            keep = (
                "r2_score",
                "formula",
                "engine",
                "silhouette",
                "anomalies_count",
                "expected_improvement",
                "planned",
                "optimal",
                "coverage_80",
            )
            return {key: result[key] for key in keep if key in result}

        return go

    with factory() as session:
        feeding_lot = session.scalar(
            select(Lot.id).where(Lot.status == LotStatus.FEEDING.value).order_by(Lot.id)
        )
        sites = list(session.scalars(select(Site.code).order_by(Site.code)))
    options = symbolic.SearchOptions()
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "train_pysr": run(
            "train_symbolic", lot_id=None, site_code=None, engine="auto", options=options
        ),
        "optimize_feeding_curve": run("optimize_feeding_curve", lot_id=feeding_lot),
        **{
            f"train_prophet_90d_{code}": run("train_prophet", site_code=code, horizon_days=90)
            for code in sites
        },
        "cluster_gaveurs": run("cluster_gaveurs", k=5),
        "detect_anomalies": run("detect_anomalies", site_code=None),
        "optimize_abattage_planning_demo": run(
            "optimize_abattage", start=TODAY, end=TODAY + timedelta(days=60)
        ),
    }

    def big_plan(slack: float) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            lots, capacity = planning_case(slack=slack)
            outcome = planning.solve(lots, capacity, time_limit_s=PLANNING_LIMIT_S)
            return {
                "slack": slack,
                "planned": outcome["planned"],
                "optimal": outcome["optimal"],
                "total_shift_days": outcome["total_shift_days"],
                "unplanned": len(outcome["unplanned"]),
            }

        return go

    # With 50 % spare capacity the MILP proves optimality fast; at 25 % it is a hard packing
    # problem and the solver returns its best plan at the time limit, marked optimal=false.
    jobs["optimize_abattage_planning_600"] = big_plan(1.5)
    jobs["optimize_abattage_planning_600_tight"] = big_plan(1.25)
    results = {name: measure(fn) for name, fn in jobs.items()}
    return {
        "dataset": summary.as_dict(),
        "parent_peak_rss_mb": round(rss_mb(), 1),
        "targets_s": TARGETS_S,
        "jobs": results,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=2, default=str)
    print()
