"""The FastAPI application factory: routers, error mapping, limits, metrics and the dashboard."""

from __future__ import annotations

import gc
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import make_asgi_app

import actors  # noqa: F401  (declares the jobs the routers enqueue)
import runtime
from api import console, docs, errors
from api.callbacks import CallbackUrl
from api.content_type import JsonOnly
from api.dashboard import PREFIX, dashboard_app
from api.fast_enqueue import FastEnqueue, fast_routes
from api.fast_front import FastEnqueueFront
from api.fast_search import FastSearch, search_route
from api.idempotency import IdempotencyKey
from api.limits import BodySizeLimit, WriteRateLimit
from api.metrics import RequestMetrics
from api.routers import (
    audit,
    clients,
    data,
    events,
    exports,
    files,
    gdpr,
    health,
    ingest,
    jobs,
    maintenance,
    ml,
    models,
    notifications,
    queues,
    retention,
    schedules,
    search,
    tasks,
    workflows,
)
from domain.platform.settings import Settings, get_settings


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`; sets the job runtime up for them (runtime.setup)."""
    runtime.setup(settings)
    # /docs and /redoc with Swagger UI and ReDoc from the fastapi-offline package: no CDN.
    app = FastAPIOffline(
        redoc_url=None,  # api/docs.py: ReDoc without its CDN logo
        # Metrics are ours (api/metrics.py, Prometheus); FastAPI's OpenTelemetry hooks would cost
        # every request for providers nobody configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="Gaveurs Tasks",
        description="Background jobs of the Gaveurs cooperative: enqueue, follow, cancel.",
        version="0.1.0",
    )
    app.state.settings = settings
    errors.install(app)
    routers = (
        events.router,
        tasks.router,
        jobs.router,
        queues.router,
        maintenance.router,
        notifications.router,
        ml.router,
        exports.router,
        files.router,
        models.router,
        ingest.router,
        schedules.router,
        data.router,
        search.router,
        search.tasks,
        health.router,
        workflows.router,
        clients.router,
        audit.router,
        retention.router,
        gdpr.router,
    )
    for router in routers:
        app.include_router(router)
    docs.install(app)
    console.install(app)
    app.mount("/metrics", make_asgi_app())
    app.mount(PREFIX, dashboard_app(settings))
    # Innermost: the hot enqueue routes' happy path without FastAPI's routing (api/fast_enqueue.py).
    app.add_middleware(
        FastEnqueue, routes=fast_routes([*notifications.router.routes, *jobs.router.routes])
    )
    # GET /api/search's likewise (api/fast_search.py).
    app.add_middleware(FastSearch, route=search_route(search.router.routes))
    app.add_middleware(IdempotencyKey)
    app.add_middleware(CallbackUrl, settings=settings)
    # Inside BodySizeLimit: it buffers bodies. The console's login is a plain HTML form.
    app.add_middleware(JsonOnly, exempt=(PREFIX, console.PREFIX))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(WriteRateLimit, rate_per_s=settings.enqueue_rate_per_s)
    app.add_middleware(RequestMetrics)  # outside the layers: sees 413s and errors of each
    # In front of them all: a plain enqueue with the same checks in one pass (api/fast_front.py).
    app.add_middleware(FastEnqueueFront)
    return app


def from_environment() -> FastAPI:
    """The app for the settings in the environment and `.env` (`uvicorn --factory`)."""
    app = create_app(get_settings())
    # The app, its routes and models are built once and live as long as the process: moved out
    # of the garbage collector's view, a full collection no longer walks them (they made the p99).
    gc.freeze()
    return app


def __getattr__(name: str) -> Any:
    """`api.main:app` (uvicorn's usual spelling) builds the app on first use, not at import."""
    if name == "app":
        built = globals()["app"] = from_environment()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
