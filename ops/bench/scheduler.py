"""Scheduler and ingest benchmark: SQAL ingest acknowledgement latency through a real uvicorn,
the cost of one clock pass over the whole table, and broker maintenance recovering the
messages of a dead worker. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from ops.bench.env import api_server, isolated
from ops.bench.report import latency_ms


def _batch(n: int, samples: int) -> dict[str, Any]:
    return {
        "device_id": "SQAL-BENCH",
        "batch_id": f"b{n}",
        "lot_id": 3001,
        "samples": [
            {
                "measured_at": "2026-01-08T09:00:00Z",
                "tof_zones_mm": [42.5] * 64,
                "liver_weight_g": 580.0,
                "grade": "A",
            }
            for _ in range(samples)
        ],
    }


def _ingest_latency(token: str, *, requests: int, samples: int, log_dir: Path) -> dict[str, Any]:
    import httpx

    with api_server(log_dir=log_dir) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        bodies = [json.dumps(_batch(i, samples)) for i in range(requests + 20)]
        for body in bodies[:20]:  # warm-up
            client.post("/api/ingest/sqal", content=body, headers=headers)
        latencies = []
        for body in bodies[20:]:
            started = time.perf_counter()
            response = client.post("/api/ingest/sqal", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.text
    return {
        "requests": requests,
        "samples_per_batch": samples,
        "body_bytes": len(bodies[-1]),
        "ack_ms": latency_ms(latencies),
    }


def _clock_pass(passes: int) -> dict[str, Any]:
    import pendulum

    from runtime import REGISTRY, broker
    from scheduler.clock import Clock
    from scheduler.schedule import SCHEDULE
    from scheduler.state import ScheduleState

    clock = Clock(ScheduleState(broker().client), SCHEDULE, REGISTRY, tz="Europe/Paris")
    start = pendulum.datetime(2026, 1, 5, 6, 0, tz="Europe/Paris")
    durations = []
    for i in range(passes):
        began = time.perf_counter()
        clock.tick(start.add(seconds=5 * i))
        durations.append((time.perf_counter() - began) * 1000)
    broker().flush_all()
    return {
        "entries": len(clock.entries),
        "passes": passes,
        "pass_ms": {"p50": round(statistics.median(durations), 3), "max": round(max(durations), 3)},
    }


def _maintenance(messages: int) -> dict[str, Any]:
    from ops.bench.jobs import Noop, noop
    from runtime import Control, broker, records

    for i in range(messages):
        noop.send(Noop(n=i))
    # A worker that fetched everything, then died long ago (its heartbeat is an hour old).
    dispatch = broker().scripts["dispatch"]
    hour_ago = int(time.time() * 1000) - 3_600_000
    args = ["fetch", hour_ago, "default", "dead-worker", broker().heartbeat_timeout]
    args += [broker().dead_message_ttl, 0, broker()._max_unpack_size(), messages]  # noqa: SLF001
    fetched = dispatch(keys=[broker().namespace], args=args)
    began = time.perf_counter()
    outcome = Control(broker(), records()).recover_dead_workers(("default",))
    elapsed_ms = (time.perf_counter() - began) * 1000
    ready = broker().client.llen(f"{broker().namespace}:default")
    broker().flush_all()
    return {
        "dead_worker_messages": len(fetched),
        "recovered": outcome["recovered"],
        "ready_after": ready,
        "recovery_ms": round(elapsed_ms, 2),
    }


def run() -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    server, tmp = isolated(API_TOKEN=token, ADMIN_TOKEN=secrets.token_urlsafe(16))
    try:
        return {
            "benchmark": "scheduler",
            "ingest_100_samples": _ingest_latency(token, requests=300, samples=100, log_dir=tmp),
            "ingest_500_samples": _ingest_latency(token, requests=100, samples=500, log_dir=tmp),
            "clock_pass_full_table": _clock_pass(200),
            "broker_maintenance": _maintenance(1000),
        }
    finally:
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
