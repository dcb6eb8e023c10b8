"""API metrics: enqueue count and latency by job, HTTP errors; served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ENQUEUED = Counter(
    "gaveurs_api_enqueued_total", "Jobs submitted through the API.", ["job", "outcome"]
)
ENQUEUE_SECONDS = Histogram(
    "gaveurs_api_enqueue_duration_seconds",
    "Time to validate and enqueue one job (Redis round trips included).",
    ["job"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
HTTP_ERRORS = Counter(
    "gaveurs_api_http_errors_total", "HTTP answers with status >= 400.", ["route", "status"]
)
