"""Stored model versions: a row in `models` plus an artefact file under MODEL_DIR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.errors import NotFound
from domain.models import MlModel

KINDS = ("symbolic_itm", "feeding_curve", "prophet", "clustering", "anomalies", "abattage")


def save_model(
    session: Session,
    *,
    model_dir: Path,
    kind: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    data_window: dict[str, Any],
    artefact: Any,
    task_id: str | None,
) -> MlModel:
    """Next version of `kind`; JSON-able artefacts are written as JSON, others with joblib."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; use one of {KINDS}")
    version = (latest_version(session, kind) or 0) + 1
    folder = model_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(artefact, dict | list):
        path = folder / f"v{version}.json"
        path.write_text(json.dumps(artefact, default=str, indent=1))
    else:
        path = folder / f"v{version}.joblib"
        joblib.dump(artefact, path)
    row = MlModel(
        kind=kind,
        version=version,
        params=params,
        metrics=metrics,
        data_window=data_window,
        artefact_path=str(path),
        task_id=task_id,
    )
    session.add(row)
    session.flush()
    return row


def model_dict(row: MlModel) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "version": row.version,
        "params": row.params,
        "metrics": row.metrics,
        "data_window": row.data_window,
        "artefact_path": row.artefact_path,
        "created_at": row.created_at,
        "task_id": row.task_id,
    }


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"unknown model kind {kind!r}; known kinds: {', '.join(KINDS)}")


def list_models(session: Session, kind: str, *, limit: int = 50) -> list[dict[str, Any]]:
    _check_kind(kind)
    query = select(MlModel).where(MlModel.kind == kind).order_by(MlModel.version.desc())
    return [model_dict(row) for row in session.scalars(query.limit(limit))]


def latest_model(session: Session, kind: str) -> dict[str, Any]:
    found = list_models(session, kind, limit=1)
    if not found:
        raise NotFound(f"no {kind} model trained yet")
    return found[0]


def latest_version(session: Session, kind: str) -> int | None:
    return session.scalar(select(func.max(MlModel.version)).where(MlModel.kind == kind))
