"""API metrics, served at /metrics: enqueue count and latency by actor (not `job`: Prometheus
owns that label and would rename ours to `exported_job`), request latency by route,
HTTP errors by route and status. Route labels are templates (`/api/tasks/status/{task_id}`),
never raw paths, so their number stays bounded.
"""

from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENQUEUED = Counter(
    "gaveurs_api_enqueued_total", "Jobs submitted through the API.", ["actor", "outcome"]
)
ENQUEUE_SECONDS = Histogram(
    "gaveurs_api_enqueue_duration_seconds",
    "Time to validate and enqueue one job (Redis round trips included).",
    ["actor"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REQUEST_SECONDS = Histogram(
    "gaveurs_api_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HTTP_ERRORS = Counter(
    "gaveurs_api_http_errors_total", "HTTP answers with status >= 400.", ["route", "status"]
)
#: The labelled series, looked up once per label values: `labels()` validates and locks each
#: call, three times per enqueue. Label values are bounded (route templates, job names).
enqueue_seconds = functools.cache(ENQUEUE_SECONDS.labels)
enqueued = functools.cache(ENQUEUED.labels)
request_seconds = functools.cache(REQUEST_SECONDS.labels)

#: Requests that matched no route (404 scans) share one label.
UNMATCHED = "unmatched"


class RequestMetrics:
    """ASGI middleware: latency by route and errors by (route, status)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/metrics"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or _mount(scope) or UNMATCHED
            record_request(route, scope["method"], started, status)


def record_request(route: str, method: str, started: float, status: int) -> None:
    """One answered request: its latency since `started` (perf_counter), and its error."""
    request_seconds(route, method).observe(time.perf_counter() - started)
    if status >= 400:
        HTTP_ERRORS.labels(route, str(status)).inc()


def _mount(scope: Scope) -> str | None:
    root = scope.get("root_path") or ""
    return root or None
