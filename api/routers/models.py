"""Read the stored model versions: GET /api/models/{kind} and /api/models/{kind}/latest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep
from api.params import Limit, NamePath
from domain.ml import store

router = APIRouter(prefix="/api/models", tags=["models"])


class ModelVersion(BaseModel):
    id: int
    kind: str
    version: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    data_window: dict[str, Any]
    artefact_path: str | None
    created_at: datetime
    task_id: str | None


@router.get("/{kind}")
def list_models(kind: NamePath, session: SessionDep, limit: Limit = 50) -> list[ModelVersion]:
    return [ModelVersion(**row) for row in store.list_models(session, kind, limit=limit)]


@router.get("/{kind}/latest")
def latest_model(kind: NamePath, session: SessionDep) -> ModelVersion:
    return ModelVersion(**store.latest_model(session, kind))
