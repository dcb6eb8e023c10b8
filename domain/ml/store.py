"""Stored model versions: a row in `models` plus an artefact file under MODEL_DIR."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import joblib
from sqlalchemy import false, func, select, update
from sqlalchemy.orm import Session

from domain.errors import NotFound
from domain.models import MlModel

KINDS = ("symbolic_itm", "feeding_curve", "prophet", "clustering", "anomalies", "abattage")
#: The first key of the models' PostgreSQL advisory locks (the second is the kind's hash).
PG_LOCK_SPACE = 0x6D6F64


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
    """Next version of `kind`; JSON-able artefacts are written as JSON, others with joblib.

    The version is taken under `kind`'s lock, held until the session commits: runs that save
    the same kind at once (retrain-all's forecasts on two ML workers) take turns instead of
    both taking the next number; the artefact is written before and renamed once its version
    is known, so the lock is not held while it is written."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; use one of {KINDS}")
    folder = model_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    # Written beside first, then renamed to its version's name: the lock is held for the rename
    # only, and a reader never sees half an artefact. A run rolled back after the rename leaves
    # its file, which the next save of that version replaces.
    suffix = "json" if isinstance(artefact, dict | list) else "joblib"
    partial = folder / f".{uuid.uuid4().hex}.{suffix}"
    try:
        if suffix == "json":
            partial.write_text(json.dumps(artefact, default=str, indent=1))
        else:
            joblib.dump(artefact, partial)
        _hold_versions(session, kind)
        version = (latest_version(session, kind) or 0) + 1
        path = folder / f"v{version}.{suffix}"
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
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return row


def _hold_versions(session: Session, kind: str) -> None:
    """Take `kind`'s version lock for the rest of the session's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(PG_LOCK_SPACE, func.hashtext(kind))))
    else:
        # SQLite has one writer at a time: a write that changes nothing takes the database's
        # lock now (or waits for it), so the latest version is read with no other save between.
        session.execute(update(MlModel).where(false()).values(version=MlModel.version))


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
