"""ML jobs on queues ml_heavy (symbolic regression, feeding curve, planning, retrain-all) and
ml_light (forecast, clustering, anomalies). Logic lives in domain/ml; these are thin wrappers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from actors.notifications import send_anomaly_alert
from domain.bounds import WINDOW_DAYS_MAX, RowId, SiteCode
from domain.errors import PermanentError
from runtime import (
    Payload,
    RetryPolicy,
    SoftTimeLimitExceeded,
    State,
    Step,
    StepResults,
    audit_processing,
    chord,
    current_settings,
    current_task_id,
    group,
    job,
    progress,
    session_scope,
    soft_limit_reached,
    submit_workflow,
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
            # Runs over per-gaveur performance (clustering) record whose data they read.
            audit=audit_processing(purpose="performance analysis"),
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


def _retrainings() -> list[Step]:
    """Each retraining as a workflow step, named after its job (and site)."""
    from domain.ml import runs

    with session_scope() as session:
        plan = runs.retrain_plan(session)
    today = date.today()
    horizon = AbattagePlanning(date_debut=today, date_fin=date.fromordinal(today.toordinal() + 60))
    steps = [
        train_pysr.step(TrainPysr(), name="train_pysr"),
        cluster_gaveurs.step(Clustering(k=plan.cluster_k), name="cluster_gaveurs"),
        detect_anomalies.step(DetectAnomalies(), name="detect_anomalies"),
        optimize_abattage_planning.step(horizon, name="optimize_abattage_planning"),
    ]
    steps += [
        train_prophet.step(
            TrainProphet(site_code=code, horizon_days=90), name=f"train_prophet:{code}"
        )
        for code in plan.site_codes
    ]
    return steps


class ChildFailed(PermanentError):
    """A retrain-all child ended in FAILURE or was cancelled."""


class RetrainSummary(Payload):
    """The retrain-all workflow's last step; `results` are the retrainings' outcomes."""

    results: StepResults = Field(default_factory=list)


@job(
    priority_range=("low", "high"),
    queue="ml_light",
    payload=RetrainAll,
    retry=RetryPolicy(max_retries=0),
    time_limit_ms=5 * 60_000,
    unique="retrain-all",
)
def retrain_all_ml_models(payload: RetrainAll) -> dict[str, Any]:
    """Start the retraining workflow: every model's training side by side, then
    `retrain_all_summary` once all have ended. Returns at once: no thread waits for the
    children (the workflow advances as each one ends). A redelivery of this job (its worker
    died) finds the workflow its first run started, under the same id, instead of a second one.
    """
    task_id = current_task_id() or uuid.uuid4().hex
    flow = chord(
        group(_retrainings()),
        retrain_all_summary.step(RetrainSummary(), receives="results", name="summary"),
    )
    submitted = submit_workflow(
        flow,
        name="retrain-all",
        policy="continue",
        workflow_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"retrain-all:{task_id}")),
    )
    return {
        "status": "started",
        "workflow_id": submitted.workflow_id,
        "status_url": f"/api/workflows/{submitted.workflow_id}",
        "children": {name: {"task_id": tid} for name, tid in submitted.steps.items()},
    }


@job(queue="ml_light", payload=RetrainSummary, retry=RetryPolicy(max_retries=0))
def retrain_all_summary(payload: RetrainSummary) -> dict[str, Any]:
    """The end of retrain-all: SUCCESS when every retraining succeeded, else FAILURE naming
    those that did not."""
    failed = [r for r in payload.results if r.state != State.SUCCESS]
    if failed:
        raise ChildFailed(
            "retrain-all: " + ", ".join(f"{r.step} ({r.task_id}) ended {r.state}" for r in failed)
        )
    return {
        "status": "success",
        "children": {r.step: {"task_id": r.task_id, "state": r.state} for r in payload.results},
    }
