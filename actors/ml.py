"""ML jobs on queues ml_heavy (symbolic regression, feeding curve, planning, retrain-all) and
ml_light (forecast, clustering, anomalies). Logic lives in domain/ml; these are thin wrappers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from actors.notifications import send_anomaly_alert
from domain.bounds import WINDOW_DAYS_MAX, RowId, SiteCode
from domain.errors import PermanentError
from runtime import (
    ACTIVE_STATES,
    Payload,
    RetryPolicy,
    SoftTimeLimitExceeded,
    State,
    Submitted,
    current_settings,
    current_task_id,
    job,
    progress,
    records,
    session_scope,
    soft_limit_reached,
)

if TYPE_CHECKING:
    from domain.ml.runs import RunContext

ML_RETRY = RetryPolicy(max_retries=2, min_backoff_ms=30_000, max_backoff_ms=600_000)


class TrainPysr(Payload):
    lot_id: RowId | None = None
    site_code: SiteCode | None = None
    generations: int | None = Field(default=None, ge=1, le=10_000)


class FeedingCurve(Payload):
    lot_id: RowId


class TrainProphet(Payload):
    site_code: SiteCode
    horizon_days: int = Field(default=30, ge=1, le=366)


class Clustering(Payload):
    k: int = Field(default=5, ge=2, le=20)


class DetectAnomalies(Payload):
    site_code: SiteCode | None = None


class AbattagePlanning(Payload):
    date_debut: date
    date_fin: date

    @model_validator(mode="after")
    def _bounded_window(self) -> AbattagePlanning:
        # A planning builds one capacity row per site and day: an open window is a memory bomb.
        if (self.date_fin - self.date_debut).days > WINDOW_DAYS_MAX:
            raise ValueError(f"plan at most {WINDOW_DAYS_MAX} days at once")
        return self


class RetrainAll(Payload):
    """No parameters: every model is retrained."""


def _run(make: Callable[[RunContext], dict[str, Any]]) -> dict[str, Any]:
    """Run one ML task in a committed session, reporting progress on the job record; a soft
    time limit makes it stop with its best result so far."""
    from domain.ml.runs import RunContext

    with session_scope() as session:
        context = RunContext(
            session=session,
            model_dir=current_settings().model_dir,
            task_id=current_task_id(),
            progress=progress,
            should_stop=soft_limit_reached,
            interrupts=(SoftTimeLimitExceeded,),
        )
        result = make(context)
    progress(100, "done")
    return result


@job(
    priority_range=("low", "high"),
    queue="ml_heavy",
    payload=TrainPysr,
    retry=ML_RETRY,
    time_limit_ms=30 * 60_000,
    soft_time_limit_ms=25 * 60_000,
    unique="pysr-{lot_id}-{site_code}",
)
def train_pysr(payload: TrainPysr) -> dict[str, Any]:
    """Symbolic regression of the ITM law on the lots of a lot's site, a site, or all sites."""
    from domain.ml import runs, symbolic

    settings = current_settings()
    options = symbolic.SearchOptions(
        generations=payload.generations or settings.sr_generations,
        population_size=settings.sr_population_size,
    )
    return _run(
        lambda ctx: runs.train_symbolic(
            ctx,
            lot_id=payload.lot_id,
            site_code=payload.site_code,
            engine=settings.sr_engine,
            options=options,
        )
    )


@job(
    priority_range=("low", "high"),
    queue="ml_heavy",
    payload=FeedingCurve,
    retry=ML_RETRY,
    time_limit_ms=10 * 60_000,
    unique="feeding-{lot_id}",
)
def optimize_feeding_curve(payload: FeedingCurve) -> dict[str, Any]:
    """Random forest on past curves, then the best welfare-bounded 14-day curve for the lot."""
    from domain.ml import runs

    return _run(lambda ctx: runs.optimize_feeding_curve(ctx, lot_id=payload.lot_id))


@job(
    priority_range=("low", "high"),
    queue="ml_light",
    payload=TrainProphet,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="prophet-{site_code}-{horizon_days}",
)
def train_prophet(payload: TrainProphet) -> dict[str, Any]:
    """Prophet forecast of a site's daily liver output with 80 % intervals."""
    from domain.ml import runs

    return _run(
        lambda ctx: runs.train_prophet(
            ctx, site_code=payload.site_code, horizon_days=payload.horizon_days
        )
    )


@job(
    priority_range=("low", "high"),
    queue="ml_light",
    payload=Clustering,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="clustering-{k}",
)
def cluster_gaveurs(payload: Clustering) -> dict[str, Any]:
    """K-Means on per-gaveur performance, silhouette and cluster profiles."""
    from domain.ml import runs

    return _run(lambda ctx: runs.cluster_gaveurs(ctx, k=payload.k))


@job(
    priority_range=("low", "high"),
    queue="ml_light",
    payload=DetectAnomalies,
    retry=ML_RETRY,
    time_limit_ms=5 * 60_000,
    unique="anomalies-{site_code}",
)
def detect_anomalies(payload: DetectAnomalies) -> dict[str, Any]:
    """Isolation forests over feeding records; critical items go out as anomaly alerts."""
    from domain.ml import runs

    result = _run(lambda ctx: runs.detect_anomalies(ctx, site_code=payload.site_code))
    alerts = result.pop("_alerts")
    ids = [send_anomaly_alert.submit(send_anomaly_alert.validate(data)).task_id for data in alerts]
    result["alerts"] = {"sent": len(ids), "task_ids": ids}
    return result


@job(
    priority_range=("low", "high"),
    queue="ml_heavy",
    payload=AbattagePlanning,
    retry=ML_RETRY,
    time_limit_ms=10 * 60_000,
    unique="abattage-{date_debut}-{date_fin}",
)
def optimize_abattage_planning(payload: AbattagePlanning) -> dict[str, Any]:
    """Exact assignment of finishing lots to slaughter days under per-site capacity."""
    from domain.ml import runs

    return _run(
        lambda ctx: runs.optimize_abattage(ctx, start=payload.date_debut, end=payload.date_fin)
    )


def _children() -> list[tuple[str, Callable[[], Submitted]]]:
    """Each retraining as (name, a function that submits it)."""
    from domain.ml import runs

    with session_scope() as session:
        plan = runs.retrain_plan(session)
    today = date.today()
    horizon = AbattagePlanning(date_debut=today, date_fin=date.fromordinal(today.toordinal() + 60))
    children: list[tuple[str, Callable[[], Submitted]]] = [
        ("train_pysr", lambda: train_pysr.submit(TrainPysr())),
        ("cluster_gaveurs", lambda: cluster_gaveurs.submit(Clustering(k=plan.cluster_k))),
        ("detect_anomalies", lambda: detect_anomalies.submit(DetectAnomalies())),
        ("optimize_abattage_planning", lambda: optimize_abattage_planning.submit(horizon)),
    ]
    children += [("train_prophet", _forecast(code)) for code in plan.site_codes]
    return children


def _forecast(site_code: str) -> Callable[[], Submitted]:
    return lambda: train_prophet.submit(TrainProphet(site_code=site_code, horizon_days=90))


class ChildFailed(PermanentError):
    """A retrain-all child ended in FAILURE or was cancelled."""


#: How often the orchestrator reads its children's records.
POLL_S = 0.5


@job(
    priority_range=("low", "high"),
    queue="ml_light",
    payload=RetrainAll,
    retry=RetryPolicy(max_retries=0),
    time_limit_ms=2 * 3600_000,
    unique="retrain-all",
)
def retrain_all_ml_models(payload: RetrainAll) -> dict[str, Any]:
    """Fan out every model's training, then follow the children until all have finished.

    It runs on ml_light, not ml_heavy: ml_heavy has one thread, and a parent waiting there for
    its ml_heavy children would wait forever. ml_light has two threads, so one stays free.
    Children go through `submit`, so a training already running is joined, not duplicated.
    """
    children = {f"{name}:{i}": submit().task_id for i, (name, submit) in enumerate(_children())}
    progress(1, f"{len(children)} trainings dispatched")
    store = records()
    while True:
        found = {r.task_id: r for r in store.get_many(children.values())}
        # A record missing here has expired or been deleted: count it as lost, not pending.
        states = {
            name: found[task_id].state if task_id in found else State.REVOKED
            for name, task_id in children.items()
        }
        finished = [name for name, state in states.items() if state not in ACTIVE_STATES]
        done_pct = sum(
            100 if name in finished else found[task_id].progress
            for name, task_id in children.items()
        ) / len(children)
        progress(done_pct, f"{len(finished)}/{len(children)} trainings finished")
        if len(finished) == len(children):
            break
        time.sleep(POLL_S)
    failed = {name: states[name].value for name in children if states[name] != State.SUCCESS}
    if failed:
        raise ChildFailed(
            "retrain-all: "
            + ", ".join(
                f"{name} ({children[name]}) ended {state}" for name, state in failed.items()
            )
        )
    return {
        "status": "success",
        "children": {
            name: {"task_id": task_id, "state": states[name].value}
            for name, task_id in children.items()
        },
    }
