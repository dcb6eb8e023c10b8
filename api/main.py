"""The FastAPI application factory: routers, error mapping, limits, metrics and the dashboard."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api import errors
from api.dashboard import PREFIX, dashboard_app
from api.limits import BodySizeLimit
from api.routers import data, health, maintenance, ml, models, queues, tasks
from domain.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Gaveurs Tasks",
        description="Background jobs of the Gaveurs cooperative: enqueue, follow, cancel.",
        version="0.1.0",
    )
    app.state.settings = settings
    errors.install(app)
    for router in (
        tasks.router,
        queues.router,
        maintenance.router,
        data.router,
        health.router,
        ml.router,
        models.router,
    ):
        app.include_router(router)
    app.mount("/metrics", make_asgi_app())
    app.mount(PREFIX, dashboard_app(settings))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_body_bytes)
    return app


app = create_app()
