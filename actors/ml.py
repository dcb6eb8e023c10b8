"""ML jobs on queues ml_heavy (symbolic regression, feeding curve, planning, retrain-all) and
ml_light (forecast, clustering, anomalies). Logic lives in domain/ml; these are thin wrappers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import dramatiq
from pydantic import BaseModel, ConfigDict, Field

from actors.jobs import REGISTRY, current_task_id, job, progress, soft_limit_reached
from actors.policy import RetryPolicy
from actors.resources import session_scope
from domain.ml import runs, symbolic
from domain.settings import get_settings

ML_RETRY = RetryPolicy(max_retries=2, min_backoff_ms=30_000, max_backoff_ms=600_000)


class TrainPysr(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_id: int | None = None
    site_code: str | None = None
    generations: int | None = Field(default=None, ge=1, le=10_000)


class FeedingCurve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_id: int


class TrainProphet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_code: str
    horizon_days: int = 30


class Clustering(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(default=5, ge=2, le=20)


class DetectAnomalies(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_code: str | None = None


class AbattagePlanning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date_debut: date
    date_fin: date


class RetrainAll(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrainAllDone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parent_task_id: str
    children: dict[str, str]


def _run(fn: Callable[..., dict[str, Any]], **options: Any) -> dict[str, Any]:
    settings = get_settings()
    with session_scope() as session:
        context = runs.RunContext(
            session=session,
            model_dir=settings.model_dir,
            task_id=current_task_id(),
            report=progress,
            should_stop=soft_limit_reached,
        )
        result = fn(context, **options)
    progress(100, "done")
    return result


@job(
    queue="ml_heavy",
    payload=TrainPysr,
    retry=ML_RETRY,
    time_limit_ms=30 * 60_000,
    soft_time_limit_ms=25 * 60_000,
    unique="pysr-{lot_id}-{site_code}",
)
def train_pysr(payload: TrainPysr) -> dict[str, Any]:
    """Symbolic regression of the ITM law on the lots of a lot's site, a site, or all sites."""
    settings = get_settings()
    options = symbolic.SearchOptions(
        generations=payload.generations or settings.sr_generations,
        population_size=settings.sr_population_size,
    )
    return _run(
        runs.train_symbolic,
        lot_id=payload.lot_id,
        site_code=payload.site_code,
        engine=settings.sr_engine,
        options=options,
    )


@job(
    queue="ml_heavy",
    payload=FeedingCurve,
    retry=ML_RETRY,
    time_limit_ms=10 * 60_000,
    unique="feeding-{lot_id}",
)
def optimize_feeding_curve(payload: FeedingCurve) -> dict[str, Any]:
    """Random forest on past curves, then the best welfare-bounded 14-day curve for the lot."""
    return _run(runs.optimize_feeding_curve, lot_id=payload.lot_id)


@job(
    queue="ml_light",
    payload=TrainProphet,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="prophet-{site_code}-{horizon_days}",
)
def train_prophet(payload: TrainProphet) -> dict[str, Any]:
    """Prophet forecast of a site's daily liver output with 80 % intervals."""
    return _run(runs.train_prophet, site_code=payload.site_code, horizon_days=payload.horizon_days)


@job(
    queue="ml_light",
    payload=Clustering,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="clustering-{k}",
)
def cluster_gaveurs(payload: Clustering) -> dict[str, Any]:
    """K-Means on per-gaveur performance, silhouette and cluster profiles."""
    return _run(runs.cluster_gaveurs, k=payload.k)


@job(
    queue="ml_light",
    payload=DetectAnomalies,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="anomalies-{site_code}",
)
def detect_anomalies(payload: DetectAnomalies) -> dict[str, Any]:
    """Isolation forests over feeding records; critical items go out as anomaly alerts."""
    result = _run(runs.detect_anomalies, site_code=payload.site_code)
    alerts = result.pop("_alerts")
    alert = REGISTRY.get("send_anomaly_alert")
    if alert is None:
        result["alerts"] = {"sent": 0, "note": "notifications are not installed"}
    else:
        ids = [alert.submit(alert.validate(data)).task_id for data in alerts]
        result["alerts"] = {"sent": len(ids), "task_ids": ids}
    return result


@job(
    queue="ml_heavy",
    payload=AbattagePlanning,
    retry=ML_RETRY,
    time_limit_ms=10 * 60_000,
    unique="abattage-{date_debut}-{date_fin}",
)
def optimize_abattage_planning(payload: AbattagePlanning) -> dict[str, Any]:
    """Exact assignment of finishing lots to slaughter days under per-site capacity."""
    return _run(runs.optimize_abattage, start=payload.date_debut, end=payload.date_fin)


def _children() -> list[tuple[str, BaseModel]]:
    from domain.ml.runs import default_site_codes

    with session_scope() as session:
        sites = default_site_codes(session)
    today = date.today()
    children: list[tuple[str, BaseModel]] = [
        ("train_pysr", TrainPysr()),
        ("cluster_gaveurs", Clustering()),
        ("detect_anomalies", DetectAnomalies()),
        (
            "optimize_abattage_planning",
            AbattagePlanning(date_debut=today, date_fin=date.fromordinal(today.toordinal() + 60)),
        ),
    ]
    children += [("train_prophet", TrainProphet(site_code=code, horizon_days=90)) for code in sites]
    return children


@job(
    queue="ml_heavy",
    payload=RetrainAll,
    retry=RetryPolicy(max_retries=0),
    time_limit_ms=60_000,
    unique="retrain-all",
)
def retrain_all_ml_models(payload: RetrainAll) -> dict[str, Any]:
    """Dispatch every model's training as one Dramatiq group; a completion step summarises."""
    children = _children()
    messages = [
        REGISTRY[name].actor.message_with_options(kwargs=child.model_dump(mode="json"))
        for name, child in children
    ]
    ids = {
        f"{name}:{i}": m.message_id
        for i, ((name, _), m) in enumerate(zip(children, messages, strict=True))
    }
    done = retrain_all_completed.actor.message_with_options(
        kwargs=RetrainAllDone(parent_task_id=current_task_id() or "", children=ids).model_dump()
    )
    dramatiq.group(messages).add_completion_callback(done).run()
    progress(100, f"{len(messages)} trainings dispatched")
    return {"status": "dispatched", "children": ids, "completion_task_id": done.message_id}


@job(queue="ml_light", payload=RetrainAllDone, retry=ML_RETRY, time_limit_ms=60_000)
def retrain_all_completed(payload: RetrainAllDone) -> dict[str, Any]:
    """The group's completion step: every child finished; report each one's outcome."""
    from actors.jobs import records

    found = {r.task_id: r for r in records().get_many(payload.children.values())}
    outcome = {
        name: found[task_id].state.value if task_id in found else "UNKNOWN"
        for name, task_id in payload.children.items()
    }
    return {"status": "success", "parent_task_id": payload.parent_task_id, "children": outcome}
