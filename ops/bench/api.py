"""API benchmark against a real uvicorn process (started as the Procfile's `web` line, on the
isolated Redis and SQLite), driven over HTTP from this process.

- Enqueue: latency and rate at 1, 16 and 64 concurrent clients (httpx.AsyncClient, one task and
  one keep-alive connection per client, after a warm-up) on `POST /api/tasks/notifications/email`
  with the bearer token. That route has no uniqueness key, so every request is a real enqueue
  (validation, job record, message); the maintenance routes are unique and would answer
  duplicates after the first. No worker consumes `notifications` meanwhile. The health-check
  route is measured too at 16 clients: its duplicate path (one Redis round trip, no enqueue).
- End-to-end: `POST /api/tasks/maintenance/health-check`, then `GET /api/tasks/status/{id}`
  every few ms until SUCCESS, one job at a time, with a real worker on `default`. Health check is
  the cheapest job an HTTP route enqueues (no route enqueues a no-op); its own run time, from its
  record, is reported beside the latency. A POST answered `duplicate` (the previous run has not
  released its key yet) is sent again and its time not counted.

- With `wrk` installed (Debian's package; `make bench` installs it as root), the same enqueue
  route is driven by wrk too, for `--wrk-seconds` per level and `--wrk-rounds` rounds, against
  one server process and against two (`WEB_CONCURRENCY=2`, as on a 2-core dyno). wrk costs the
  machine a fraction of what the Python client does (1.2 ms of CPU per request, on the same two
  cores as the server), so these are the figures the targets are judged on (medians over the
  rounds); the httpx ones remain for comparison. Each wrk level says where the CPU goes per
  request (server, Redis, wrk itself) and the rate those costs allow on this machine's cores
  (`cpu_bound_requests_per_second`): when it is near the measured rate, the cores, not the
  code's waits, are the limit.

The enqueue route is `async def` (api/routers/notifications.py): its enqueue is awaited on the
event loop with redis.asyncio (runtime/async_enqueue.py), no thread-pool hop, and it is answered
past FastAPI's routing and dependency solving (api/fast_enqueue.py). `targets` also counts the
wrk rounds at 16 connections that held both the rate and the p99 (the issue asks 10 of 10).

    python -m ops.bench.api [--clients 1 16 64 --requests 4000 --e2e-samples 300
                             --wrk-seconds 5 --wrk-rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx

from ops.bench import report
from ops.bench.env import api_server, group_cpu_s, isolated, process_cpu_s, worker

ENQUEUE_ROUTE = "/api/tasks/notifications/email"
ENQUEUE_BODY = json.dumps(
    {"to_email": "bench@example.org", "subject": "Bench", "body_html": "<p>bench</p>"}
).encode()
UNIQUE_ROUTE = "/api/tasks/maintenance/health-check"
STATUS_POLL_S = 0.002
WARM_UP_PER_CLIENT = 20
TARGET_CLIENTS = 16
#: (enqueues/s at least, p99 ms at most) at 16 wrk connections, by server processes.
TARGETS = {"1_process": (2500.0, 10.0), "2_processes": (4000.0, 15.0)}


async def _load(
    base: str, token: str, *, route: str, body: bytes, clients: int, requests: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # One client with one keep-alive connection per task: a shared pool's bookkeeping grows
    # with its size and made the load generator, not the server, the bottleneck at 64.
    pool = [httpx.AsyncClient(base_url=base, headers=headers, timeout=30) for _ in range(clients)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    duplicates = 0
    left = 0

    async def one_client(client: httpx.AsyncClient) -> None:
        nonlocal left, duplicates
        while left > 0:
            left -= 1
            started = time.perf_counter()
            response = await client.post(route, content=body)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] += 1
            duplicates += response.status_code == 202 and response.json()["duplicate"]

    try:
        left = clients * WARM_UP_PER_CLIENT  # connections opened, code paths and caches warm
        await asyncio.gather(*(one_client(client) for client in pool))
        latencies.clear()
        statuses.clear()
        duplicates, left = 0, requests
        started = time.perf_counter()
        await asyncio.gather(*(one_client(client) for client in pool))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(client.aclose() for client in pool))
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": dict(statuses),
        "duplicates": duplicates,
    }


def load_level(
    base: str, token: str, *, pids: dict[str, int], route: str, clients: int, requests: int
) -> dict[str, Any]:
    body = ENQUEUE_BODY if route == ENQUEUE_ROUTE else b""
    cpu_before = _cpu(pids)
    outcome = asyncio.run(
        _load(base, token, route=route, body=body, clients=clients, requests=requests)
    )
    # CPU of the whole level including warm-up, spread over every request sent.
    sent = requests + clients * WARM_UP_PER_CLIENT
    return {
        "clients": clients,
        "requests": requests,
        "requests_per_second": round(requests / outcome["elapsed"], 1),
        "latency_ms": report.latency_ms(outcome["latencies"]),
        "statuses": outcome["statuses"],
        "duplicates": outcome["duplicates"],
        "cpu_ms_per_request": {
            name: round((after - cpu_before[name]) / sent * 1000, 3)
            for name, after in _cpu(pids).items()
        },
    }


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {
        "server": group_cpu_s(pids["server"]),
        "redis": process_cpu_s(pids["redis"]),
        "load_generator": time.process_time(),
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return round(float(number) * UNITS_MS[unit], 2)


def wrk_level(
    base: str, token: str, *, pids: dict[str, int], clients: int, seconds: int
) -> dict[str, Any]:
    """One wrk run (1 thread, `clients` connections) on the enqueue route, after a warm-up."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=json.dumps(ENQUEUE_BODY.decode()), token=token))
    url = base + ENQUEUE_ROUTE
    command = ["wrk", "-t1", f"-c{clients}", "--latency", "-s", script.name, url]
    subprocess.run([*command, "-d2s"], capture_output=True, check=True)
    cpu_before, wrk_before = _cpu(pids), _children_cpu_s()
    done = subprocess.run([*command, f"-d{seconds}s"], capture_output=True, text=True, check=True)
    cpu = {name: after - cpu_before[name] for name, after in _cpu(pids).items()}
    del cpu["load_generator"]  # this process: it only waits for wrk
    cpu["wrk"] = _children_cpu_s() - wrk_before
    text = done.stdout
    sent = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    per_request = {name: round(seconds / sent * 1000, 3) for name, seconds in cpu.items()}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, flags=re.MULTILINE))
    return {
        "clients": clients,
        "requests": sent,
        "requests_per_second": float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1)),  # type: ignore[union-attr]
        "latency_ms": {f"p{k}": _ms(v) for k, v in latency.items()},
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "cpu_ms_per_request": per_request,
        "cpu_bound_requests_per_second": round(
            (os.cpu_count() or 1) * 1000 / sum(per_request.values()), 1
        ),
    }


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_levels(
    token: str, tmp: Any, server: Any, *, clients: tuple[int, ...], seconds: int, rounds: int
) -> dict[str, Any]:
    """Each level `rounds` times; its median rate and latencies, and every round."""
    by_workers: dict[str, Any] = {}
    for workers in (1, 2):
        with api_server(log_dir=tmp, workers=workers) as api:
            pids = {"server": api.pid, "redis": server.process.pid}
            runs: dict[int, list[dict[str, Any]]] = {n: [] for n in clients}
            for _ in range(rounds):
                for n in clients:
                    runs[n].append(wrk_level(api.url, token, pids=pids, clients=n, seconds=seconds))
            by_workers[f"{workers}_process" + ("es" if workers > 1 else "")] = [
                _median_level(n, levels) for n, levels in runs.items()
            ]
    return by_workers


def _median_level(clients: int, levels: list[dict[str, Any]]) -> dict[str, Any]:
    def median(get: Any) -> float:
        return round(statistics.median(get(level) for level in levels), 3)

    cpu_names = levels[0]["cpu_ms_per_request"]
    return {
        "clients": clients,
        "rounds": len(levels),
        "requests_per_second": median(lambda level: level["requests_per_second"]),
        "latency_ms": {
            pct: median(lambda level, pct=pct: level["latency_ms"][pct])
            for pct in levels[0]["latency_ms"]
        },
        "non_2xx": sum(level["non_2xx"] for level in levels),
        "cpu_ms_per_request": {
            name: median(lambda level, name=name: level["cpu_ms_per_request"][name])
            for name in cpu_names
        },
        "cpu_bound_requests_per_second": median(
            lambda level: level["cpu_bound_requests_per_second"]
        ),
        "requests_per_second_runs": [level["requests_per_second"] for level in levels],
        "p99_ms_runs": [level["latency_ms"]["p99"] for level in levels],
    }


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def end_to_end(base: str, token: str, *, samples: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies, run_ms, pickup_ms, resent = [], [], [], 0
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(samples + 10):  # the first 10 warm up
            while True:
                started = time.perf_counter()
                submitted = client.post(UNIQUE_ROUTE).json()
                if not submitted["duplicate"]:
                    break
                resent += 1
                time.sleep(STATUS_POLL_S)
            while (task := client.get(submitted["status_url"]).json())["status"] != "SUCCESS":
                assert task["status"] in ("PENDING", "STARTED"), task
                time.sleep(STATUS_POLL_S)
            latencies.append((time.perf_counter() - started) * 1000)
            ran = _instant(task["completed_at"]) - _instant(task["started_at"])
            run_ms.append(ran.total_seconds() * 1000)
            waited = _instant(task["started_at"]) - _instant(task["enqueued_at"])
            pickup_ms.append(waited.total_seconds() * 1000)
    return {
        "samples": samples,
        "route": f"POST {UNIQUE_ROUTE} -> GET /api/tasks/status/{{id}} until SUCCESS",
        "status_poll_ms": STATUS_POLL_S * 1000,
        "latency_ms": report.latency_ms(latencies[10:]),
        "health_check_run_ms_median": statistics.median(run_ms[10:]),
        # Enqueued -> STARTED, from the record: how long an idle worker took to pick the job up.
        "pickup_ms": report.latency_ms(pickup_ms[10:]),
        "duplicate_answers_resent": resent,
    }


def run(
    *,
    clients: tuple[int, ...] = (1, 16, 64),
    requests: int = 4000,
    e2e_samples: int = 300,
    wrk_seconds: int = 5,
    wrk_rounds: int = 10,
) -> dict[str, Any]:
    load_before = report.load()
    token = secrets.token_urlsafe(24)
    # The per-process write limit (ENQUEUE_RATE_PER_S, 2,000/s by default) is off: measured
    # with it, a server faster than the limit answers cheap 429s, which wrk counts as requests.
    server, tmp = isolated(
        API_TOKEN=token, ADMIN_TOKEN=secrets.token_urlsafe(24), ENQUEUE_RATE_PER_S="0"
    )
    try:
        with api_server(log_dir=tmp) as api:
            base, pids = api.url, {"server": api.pid, "redis": server.process.pid}
            levels = [
                load_level(
                    base, token, pids=pids, route=ENQUEUE_ROUTE, clients=n, requests=requests
                )
                for n in clients
            ]
            duplicate_path = load_level(
                base, token, pids=pids, route=UNIQUE_ROUTE, clients=16, requests=requests
            )
            with worker(
                server.client, module="actors:setup", queue="default", threads=4, log_dir=tmp
            ):
                e2e = end_to_end(base, token, samples=e2e_samples)
        by_wrk = (
            wrk_levels(token, tmp, server, clients=clients, seconds=wrk_seconds, rounds=wrk_rounds)
            if wrk_seconds and shutil.which("wrk")
            else None
        )
    finally:
        server.stop()
    targets: dict[str, Any] = {}
    for processes, (rate, p99) in TARGETS.items():
        judged = (by_wrk or {}).get(processes, [])
        at_target: dict[str, Any] = next(
            (level for level in judged if level["clients"] == TARGET_CLIENTS), {}
        )
        accepted = at_target.get("requests_per_second") if not at_target.get("non_2xx") else 0.0
        targets[f"{processes}_enqueues_per_second_at_16_clients"] = report.target(
            accepted, at_least=rate
        )
        targets[f"{processes}_p99_ms_at_16_clients"] = report.target(
            at_target.get("latency_ms", {}).get("p99"), at_most=p99
        )
        # The issue asks both held in every one of the consecutive rounds (10 of 10).
        runs = zip(
            at_target.get("requests_per_second_runs", []),
            at_target.get("p99_ms_runs", []),
            strict=True,
        )
        held = sum(rps >= rate and ms <= p99 for rps, ms in runs)
        if at_target.get("non_2xx"):
            held = 0  # a rate made of refusals is no rate
        rounds = at_target.get("rounds")
        targets[f"{processes}_rounds_holding_both_at_16_clients"] = {
            "value": held if rounds else None,  # None: not measured (no wrk)
            "target": f"{rounds} of {rounds}" if rounds else "every round",
            "pass": bool(rounds) and held == rounds,
        }
    return {
        "benchmark": "api",
        "server": "uvicorn api.main:app --no-access-log (1 process), isolated Redis and SQLite",
        "enqueue": {"route": f"POST {ENQUEUE_ROUTE}", "levels": levels},
        "enqueue_wrk": by_wrk,
        "targets_judged_on": "wrk at 16 connections, medians over --wrk-rounds; none without wrk",
        "health_check_duplicate_path": duplicate_path,
        "end_to_end": e2e,
        "targets": targets,
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.api", description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--e2e-samples", type=int, default=300)
    parser.add_argument("--wrk-seconds", type=int, default=5, help="0: no wrk levels")
    parser.add_argument("--wrk-rounds", type=int, default=10)
    args = parser.parse_args()
    result = run(
        clients=tuple(args.clients),
        requests=args.requests,
        e2e_samples=args.e2e_samples,
        wrk_seconds=args.wrk_seconds,
        wrk_rounds=args.wrk_rounds,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
