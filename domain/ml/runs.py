"""One entry point per ML job: read the data, fit, store the model version, shape the result.

Actors call these with a session, the model directory, the task id and two callbacks
(`report(pct, note)`, `should_stop()`), so this module stays free of dramatiq.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from domain.errors import InsufficientData
from domain.ml import anomalies, clustering, data, feeding, forecast, planning, store, symbolic
from domain.platform import audit
from domain.progress import Progress

MIN_LOTS_FOR_SR = 20


@dataclass(frozen=True)
class RunContext:
    session: Session
    model_dir: Path
    task_id: str | None
    progress: Progress
    should_stop: Callable[[], bool]
    #: Exceptions a worker raises asynchronously at the soft time limit: the search keeps its
    #: last completed round instead of losing everything.
    interrupts: tuple[type[BaseException], ...] = ()
    #: The processing this run is, for the audit trail of the people whose data it reads.
    audit: audit.Processing | None = None


def train_symbolic(
    ctx: RunContext,
    *,
    lot_id: int | None,
    site_code: str | None,
    engine: str,
    options: symbolic.SearchOptions,
) -> dict[str, Any]:
    scope = data.resolve_scope(ctx.session, lot_id=lot_id, site_code=site_code)
    lots = data.finished_lots(ctx.session, scope)
    x, y = data.itm_table(lots, minimum=MIN_LOTS_FOR_SR)
    chosen = symbolic.choose_engine(engine)
    ctx.progress(5, f"{chosen.name}: searching over {len(y)} lots")

    def on_round(done: int, best_r2: float) -> bool:
        ctx.progress(5 + 90 * done / options.generations, f"generation {done}, R2 {best_r2:.4f}")
        return not ctx.should_stop()

    found = chosen.search(
        x, y, data.ITM_FEATURES, options=options, on_round=on_round, interrupts=ctx.interrupts
    )
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="symbolic_itm",
        params={"engine": found.engine, **options.__dict__},
        metrics={"r2_score": found.r2_score, "complexity": found.complexity},
        data_window=scope.window(lots),
        artefact={
            "formula": found.formula,
            "variables": list(data.ITM_FEATURES),
            "pareto_front": found.pareto_front,
        },
        task_id=ctx.task_id,
    )
    return {
        "status": "success",
        "lot_id": lot_id,
        "site_code": site_code,
        "engine": found.engine,
        "formula": f"ITM = {found.formula}",
        "r2_score": round(found.r2_score, 4),
        "variables": found.variables,
        "complexity": found.complexity,
        "pareto_front": found.pareto_front,
        "generations": found.generations,
        "stopped_at_soft_limit": found.stopped_early,
        "lots": len(y),
        "model_version": row.version,
    }


def optimize_feeding_curve(ctx: RunContext, *, lot_id: int) -> dict[str, Any]:
    data.lot_by_id(ctx.session, lot_id)
    ctx.progress(10, "reading past curves")
    table, contexts = feeding.lot_table(ctx.session)
    if lot_id not in contexts:
        raise InsufficientData(f"lot {lot_id} has no feeding records yet")
    forest, oob = feeding.train(table)
    ctx.progress(60, f"random forest trained on {len(table)} lots (OOB R2 {oob:.3f})")
    outcome = feeding.optimise(forest, contexts[lot_id])
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="feeding_curve",
        params={"n_estimators": forest.n_estimators, "days": feeding.DAYS},
        metrics={"oob_r2": oob},
        data_window={"lots": len(table)},
        artefact=forest,
        task_id=ctx.task_id,
    )
    return {
        "status": "success",
        "lot_id": lot_id,
        **outcome,
        "oob_r2": round(oob, 4),
        "model_version": row.version,
    }


def train_prophet(ctx: RunContext, *, site_code: str, horizon_days: int) -> dict[str, Any]:
    site = data.site_by_code(ctx.session, site_code)
    history = forecast.daily_output(ctx.session, site.id)
    ctx.progress(20, f"fitting Prophet on {len(history)} days")
    fitted = forecast.fit_forecast(history, horizon_days=horizon_days)
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="prophet",
        params={
            "site_code": site.code,
            "horizon_days": horizon_days,
            "interval_width": fitted["interval_width"],
        },
        metrics={"history_days": len(history)},
        data_window={
            "site": site.code,
            "from": history.ds.min().date().isoformat(),
            "to": history.ds.max().date().isoformat(),
        },
        artefact=fitted["model"],
        task_id=ctx.task_id,
    )
    return {
        "status": "success",
        "site_code": site.code,
        "horizon_days": horizon_days,
        "interval_width": fitted["interval_width"],
        "forecast": fitted["forecast"],
        "model_version": row.version,
    }


def cluster_gaveurs(ctx: RunContext, *, k: int) -> dict[str, Any]:
    frame = clustering.gaveur_performance(ctx.session)
    ctx.progress(30, f"clustering {len(frame)} gaveurs")
    outcome = clustering.cluster(frame, k=k)
    if ctx.audit is not None:
        subjects = [audit.gaveur(int(i)) for i in frame["gaveur_id"]] if len(frame) else []
        audit.record(ctx.session, ctx.audit, subjects)
    artefact = outcome.pop("artefact")
    outcome.pop("_centres")
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="clustering",
        params={"k": k},
        metrics={"silhouette": outcome["silhouette"]},
        data_window={"gaveurs": len(frame)},
        artefact=artefact,
        task_id=ctx.task_id,
    )
    return {"status": "success", **outcome, "model_version": row.version}


def detect_anomalies(ctx: RunContext, *, site_code: str | None) -> dict[str, Any]:
    site = data.site_by_code(ctx.session, site_code) if site_code else None
    frame = anomalies.records_frame(ctx.session, site_id=site.id if site else None)
    ctx.progress(30, f"scoring {len(frame)} feeding records")
    flagged, forests = anomalies.detect(frame)
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="anomalies",
        params={"flag_score": anomalies.FLAG_SCORE, "critical_score": anomalies.CRITICAL_SCORE},
        metrics={"records": len(frame), "flagged": len(flagged)},
        data_window={"scope": site.code if site else "all sites", "records": len(frame)},
        artefact=forests,
        task_id=ctx.task_id,
    )
    return {
        "status": "success",
        "site_code": site.code if site else None,
        "records": len(frame),
        "anomalies_count": len(flagged),
        "critical_count": sum(item.severity == "critical" for item in flagged),
        "anomalies": [{**item.__dict__, "severity": item.severity} for item in flagged[:500]],
        "model_version": row.version,
        "_alerts": anomalies.alert_payloads(flagged),
    }


def optimize_abattage(ctx: RunContext, *, start: date, end: date) -> dict[str, Any]:
    lots, capacity = planning.load_problem(ctx.session, start=start, end=end)
    ctx.progress(20, f"planning {len(lots)} lots over {len(capacity)} site-days")
    outcome = planning.solve(lots, capacity)
    row = store.save_model(
        ctx.session,
        model_dir=ctx.model_dir,
        kind="abattage",
        params={"max_shift_days": planning.MAX_SHIFT_DAYS},
        metrics={
            "total_shift_days": outcome["total_shift_days"],
            "unplanned": len(outcome["unplanned"]),
        },
        data_window={"from": start.isoformat(), "to": end.isoformat(), "lots": len(lots)},
        artefact=outcome["plan"],
        task_id=ctx.task_id,
    )
    return {
        "status": "success",
        "date_debut": start.isoformat(),
        "date_fin": end.isoformat(),
        **outcome,
        "model_version": row.version,
    }


@dataclass(frozen=True)
class RetrainPlan:
    """What retrain-all trains: every site's forecast, and a k the gaveur count can support."""

    site_codes: list[str]
    cluster_k: int


def retrain_plan(session: Session) -> RetrainPlan:
    from sqlalchemy import select

    from domain.models import Site

    gaveurs = len(clustering.gaveur_performance(session))
    return RetrainPlan(
        site_codes=list(session.scalars(select(Site.code).order_by(Site.code))),
        # K-Means wants about two gaveurs per cluster; small cooperatives get fewer clusters.
        cluster_k=max(2, min(clustering.DEFAULT_K, gaveurs // 2)),
    )
