"""Enqueue routes of the ML family (queues ml_heavy and ml_light), seed 001 paths."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from actors.ml import (
    Clustering,
    DetectAnomalies,
    FeedingCurve,
    RetrainAll,
    TrainProphet,
    TrainPysr,
    cluster_gaveurs,
    detect_anomalies,
    optimize_abattage_planning,
    optimize_feeding_curve,
    retrain_all_ml_models,
    train_prophet,
    train_pysr,
)
from api.deps import SessionDep, WriterDep
from api.enqueue import submit
from api.params import LotId, OptionalLotId, OptionalSiteCode, SiteCode
from api.schemas import ACCEPTED, Accepted
from domain.errors import InvalidInput
from domain.ml import data
from domain.ml.data import HORIZONS

router = APIRouter(
    responses=ACCEPTED, prefix="/api/tasks/ml", tags=["ml"], dependencies=[WriterDep]
)


@router.post("/pysr/train", status_code=202)
def enqueue_pysr(
    session: SessionDep,
    lot_id: OptionalLotId = None,
    site_code: OptionalSiteCode = None,
    generations: int | None = Query(default=None, ge=1, le=10_000),
) -> Accepted:
    # Fail here with a 404 rather than queue a job that can only fail.
    data.resolve_scope(session, lot_id=lot_id, site_code=site_code)
    payload = TrainPysr(lot_id=lot_id, site_code=site_code, generations=generations)
    return submit(
        train_pysr,
        payload,
        message="PySR training started",
        lot_id=lot_id,
        site_code=site_code,
    )


@router.post("/feeding-curve/optimize", status_code=202)
def enqueue_feeding_curve(session: SessionDep, lot_id: LotId) -> Accepted:
    data.lot_by_id(session, lot_id)
    return submit(
        optimize_feeding_curve,
        FeedingCurve(lot_id=lot_id),
        message="Feeding curve optimization started",
        lot_id=lot_id,
    )


@router.post("/prophet/train", status_code=202)
def enqueue_prophet(
    session: SessionDep,
    site_code: SiteCode,
    horizon_days: int = Query(default=30, ge=1, le=366),
) -> Accepted:
    if horizon_days not in HORIZONS:
        raise InvalidInput(f"horizon_days={horizon_days}: use one of {HORIZONS}")
    data.site_by_code(session, site_code)
    return submit(
        train_prophet,
        TrainProphet(site_code=site_code, horizon_days=horizon_days),
        message="Prophet training started",
        site_code=site_code,
        horizon_days=horizon_days,
    )


@router.post("/clustering/run", status_code=202)
def enqueue_clustering(k: int = Query(default=5, ge=2, le=20)) -> Accepted:
    return submit(cluster_gaveurs, Clustering(k=k), message="Gaveur clustering started", k=k)


@router.post("/anomalies/detect", status_code=202)
def enqueue_anomalies(session: SessionDep, site_code: OptionalSiteCode = None) -> Accepted:
    if site_code is not None:
        data.site_by_code(session, site_code)
    return submit(
        detect_anomalies,
        DetectAnomalies(site_code=site_code),
        message="Anomaly detection started",
        site_code=site_code,
    )


@router.post("/abattage/optimize", status_code=202)
def enqueue_abattage(date_debut: date, date_fin: date) -> Accepted:
    if date_fin < date_debut:
        raise InvalidInput(f"date_fin {date_fin} is before date_debut {date_debut}")
    payload = optimize_abattage_planning.validate({"date_debut": date_debut, "date_fin": date_fin})
    return submit(
        optimize_abattage_planning,
        payload,
        message="Abattage planning optimization started",
        date_debut=date_debut,
        date_fin=date_fin,
    )


@router.post("/retrain-all", status_code=202)
def enqueue_retrain_all() -> Accepted:
    return submit(retrain_all_ml_models, RetrainAll(), message="Full ML retraining started")
