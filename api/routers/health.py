"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ControlDep
from domain.platform import db
from runtime import engine

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(control: ControlDep) -> JSONResponse | dict[str, Any]:
    """Redis and the database are reachable; 503 with the failing part otherwise."""
    checks: dict[str, str] = {}
    try:
        control.client.ping()
        checks["redis"] = "ok"
    except Exception as error:  # readiness reports, it does not raise
        checks["redis"] = f"unreachable: {type(error).__name__}: {error}"
    try:
        db.ping(engine())
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unreachable: {type(error).__name__}: {error}"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return body if ready else JSONResponse(body, status_code=503)
