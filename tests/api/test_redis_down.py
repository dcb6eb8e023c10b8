"""With Redis down, enqueue answers 503 fast with a clear message: no hang, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from ops.local_redis import free_port
from tests.conftest import API_TOKEN
from tests.support.workers import ROOT


def test_enqueue_with_redis_down_is_a_fast_503(demo_database: str) -> None:
    port, dead_redis = free_port(), free_port()
    # Store and forward off (DEFERRED_MAX_JOBS=0): the behaviour before it, and its opt-out.
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0",
        "DEFERRED_MAX_JOBS": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "API did not start"
                time.sleep(0.1)

        started = time.monotonic()
        response = httpx.post(
            f"{base}/api/tasks/maintenance/health-check",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )
        elapsed = time.monotonic() - started

        assert response.status_code == 503
        assert "Redis" in response.json()["detail"] and "Retry" in response.json()["detail"]
        assert response.headers["Retry-After"] == "5"
        assert elapsed < 1.0, elapsed
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=10)
