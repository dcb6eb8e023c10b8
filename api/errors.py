"""The one place where errors become HTTP answers: `{"detail": ...}` with the right status."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from domain.errors import (
    BrokerUnavailable,
    Conflict,
    GaveursError,
    Gone,
    InsufficientData,
    InvalidInput,
    NotFound,
    TransientError,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[GaveursError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (InvalidInput, 422),
    (InsufficientData, 422),
    (BrokerUnavailable, 503),
    (TransientError, 503),
]
BROKER_DOWN = (
    "The job broker (Redis) is unavailable, so the job was not accepted. Retry in a few seconds."
)


def status_for(error: GaveursError) -> int:
    for kind, code in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return code
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(GaveursError)
    async def domain_error(request: Request, error: GaveursError) -> JSONResponse:
        code = status_for(error)
        headers = {"Retry-After": "5"} if code == 503 else None
        return JSONResponse({"detail": str(error)}, status_code=code, headers=headers)

    @app.exception_handler(redis.RedisError)
    async def broker_down(request: Request, error: redis.RedisError) -> JSONResponse:
        logger.warning("Redis error on %s %s: %s", request.method, request.url.path, error)
        return JSONResponse(
            {"detail": f"{BROKER_DOWN} ({type(error).__name__})"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
