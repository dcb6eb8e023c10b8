"""Crash recovery, ours vs stock Dramatiq: a worker SIGKILLed mid-job, how long until the job is
running again on another worker (and until it succeeds there).

- ours: production settings (WORKER_HEARTBEAT_TIMEOUT_MS=30000, Dramatiq's random maintenance
  left at its 0.1 % of broker calls), our heartbeat thread in every worker, and a real clock
  process (`python -m scheduler`) sending `broker_maintenance` every minute to `default`, which
  the surviving worker consumes. Which mechanism gave the job back is read from the maintenance
  runs' results.
- stock: a plain `RedisBroker` with Dramatiq's defaults (60 s heartbeat timeout, maintenance on
  0.1 % of broker calls), nothing else. Its wait is capped; the figure is then "> cap", with the
  delay to expect from the rate of broker calls measured meanwhile.

Per trial: a victim worker (1 thread, queue ml_light only) starts the slow job, whose first
attempt holds until killed; a survivor starts; once it is live the victim's whole process group
is SIGKILLed. The recovered attempt takes `--seconds`. Both sides run at the same
time on two Redis servers: they mostly wait, and the stock wait would otherwise add its cap.

    python -m ops.bench.recovery [--trials 3 --stock-cap-s 300]
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ops.bench import counters, report
from ops.bench.env import clock, isolated, kill, worker
from ops.bench.produce import SIDES, send_slow
from ops.local_redis import RedisServer

HEARTBEATS = "dramatiq:__heartbeats__"
SLOW_QUEUE = "ml_light"
OURS_TARGET_S = 120.0
OURS_CAP_S = 300.0
DRAMATIQ_HEARTBEAT_TIMEOUT_MS = 60_000
DRAMATIQ_MAINTENANCE_CHANCE = 1000


@dataclass(frozen=True)
class Side:
    name: str
    client: redis.Redis
    env: Mapping[str, str]
    survivor_queues: tuple[str, ...]
    heartbeat_timeout_s: float
    maintenance_chance: int  # per million broker calls
    send_slow: Callable[[str, float], object]


def _wait(condition: Any, *, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def _dispatch_calls(client: redis.Redis) -> int:
    """Lua calls so far: every Dramatiq broker command (fetch, enqueue, ack...) is one."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def trial(side: Side, *, index: int, seconds: float, cap_s: float, log_dir: Path) -> dict[str, Any]:
    key = f"{side.name}-{index}-{uuid.uuid4().hex[:8]}"
    client, module = side.client, SIDES[side.name]
    common: dict[str, Any] = {"module": module, "log_dir": log_dir, "env": side.env}
    common["wait_live"] = False  # the same readiness for both sides, below
    victim_worker = worker(client, queue=SLOW_QUEUE, threads=1, name=f"{key}-victim", **common)
    with victim_worker as victim:
        side.send_slow(key, seconds)
        assert _wait(lambda: counters.attempts(client, key), timeout_s=120), "job did not start"
        known = set(client.zrange(HEARTBEATS, 0, -1))
        queues = side.survivor_queues
        with worker(client, queue=queues, threads=4, name=f"{key}-survivor", **common):
            # Live: its consumers have fetched at least once (a new broker id in the heartbeats).
            assert _wait(lambda: set(client.zrange(HEARTBEATS, 0, -1)) - known, timeout_s=120)
            kill(victim)
            killed_at, calls_before = time.time(), _dispatch_calls(client)
            assert not counters.finished(client, key), "the first attempt ended before the kill"
            again = _wait(lambda: len(counters.attempts(client, key)) >= 2, timeout_s=cap_s)
            waited_s = time.time() - killed_at
            calls_per_s = (_dispatch_calls(client) - calls_before) / waited_s
            outcome: dict[str, Any] = {
                "killed_at_second_of_minute": round(killed_at % 60, 1),
                "recovered": again,
                "broker_calls_per_second": round(calls_per_s, 2),
            }
            if not again:
                return {**outcome, "running_again_s": f"> {cap_s:g}"}
            outcome["running_again_s"] = round(counters.attempts(client, key)[-1] - killed_at, 1)
            _wait(lambda: counters.finished(client, key), timeout_s=seconds + 60)
            outcome["success_s"] = round(time.time() - killed_at, 1)
            return outcome


def expected_stock_delay(side: Side, calls_per_s: float, cap_s: float) -> dict[str, Any]:
    """Dramatiq's maintenance gives a dead worker's messages back only when it runs on that
    message's queue: the survivor's idle consumers poll the queue and its delay queue at the same
    rate, so half of the calls measured count, each with `chance` per million."""
    per_s = calls_per_s / 2 * side.maintenance_chance / 1_000_000
    if per_s <= 0:
        return {"expected_s": None}
    after_timeout = max(0.0, cap_s - side.heartbeat_timeout_s)
    expected = side.heartbeat_timeout_s + 1 / per_s
    return {
        "calls_per_second_on_the_queue": round(calls_per_s / 2, 2),
        "expected_s": round(expected),
        "chance_recovered_within_cap": round(1 - math.exp(-per_s * after_timeout), 3),
        "arithmetic": (
            f"{side.heartbeat_timeout_s:g} s heartbeat timeout + 1 / ({calls_per_s / 2:.2f} "
            f"calls/s x {side.maintenance_chance}/1e6) = {expected:.0f} s"
        ),
    }


@contextmanager
def maintenance_every(period_s: float) -> Iterator[None]:
    """The clock's cadence, shortened: broker_maintenance sent every `period_s` (smoke tests)."""
    from actors.maintenance import Empty, broker_maintenance

    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(period_s):
            broker_maintenance.submit(Empty())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()


def recovered_by_maintenance(since_s: float) -> int:
    from runtime import records

    runs = records().list(actor="broker_maintenance", limit=500)
    return sum(
        int((run.result or {}).get("recovered_by_queue", {}).get(SLOW_QUEUE, 0))
        for run in runs
        if run.completed_at and run.completed_at / 1000 >= since_s
    )


def ours(side: Side, *, trials: int, seconds: float, period_s: float | None, log_dir: Path) -> Any:
    cadence = maintenance_every(period_s) if period_s else clock(log_dir=log_dir, env=side.env)
    results = []
    with cadence:
        for index in range(trials):
            started = time.time()
            outcome = trial(side, index=index, seconds=seconds, cap_s=OURS_CAP_S, log_dir=log_dir)
            if outcome["recovered"]:
                by_clock = recovered_by_maintenance(started)
                outcome["recovered_by"] = (
                    "broker_maintenance" if by_clock else "Dramatiq's random maintenance"
                )
            results.append(outcome)
    return results


def run(
    *,
    trials: int = 3,
    stock_cap_s: float = 300,
    seconds: float = 10,
    heartbeat_timeout_ms: int = 30_000,
    stock_heartbeat_timeout_ms: int = DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
    stock_maintenance_chance: int = DRAMATIQ_MAINTENANCE_CHANCE,
    maintenance_period_s: float | None = None,
) -> dict[str, Any]:
    load_before = report.load()
    server, tmp = isolated(WORKER_HEARTBEAT_TIMEOUT_MS=str(heartbeat_timeout_ms))
    stock_server = RedisServer()
    stock_env = {"REDIS_URL": stock_server.url}
    if stock_heartbeat_timeout_ms != DRAMATIQ_HEARTBEAT_TIMEOUT_MS:
        stock_env["BENCH_PLAIN_HEARTBEAT_TIMEOUT_MS"] = str(stock_heartbeat_timeout_ms)
    if stock_maintenance_chance != DRAMATIQ_MAINTENANCE_CHANCE:
        stock_env["BENCH_PLAIN_MAINTENANCE_CHANCE"] = str(stock_maintenance_chance)
    from domain.platform.settings import get_settings
    from ops.bench import jobs  # ours, in this process: it reads our records anyway

    chance = get_settings().broker_maintenance_chance
    our_side = Side(
        "ours",
        server.client,
        {},
        (SLOW_QUEUE, "default"),
        heartbeat_timeout_ms / 1000,
        chance,
        jobs.send_slow,
    )
    stock_side = Side(
        "plain",
        stock_server.client,
        stock_env,
        (SLOW_QUEUE,),
        stock_heartbeat_timeout_ms / 1000,
        stock_maintenance_chance,
        lambda key, seconds: send_slow("plain", key, seconds, env=stock_env),
    )
    found: dict[str, Any] = {}

    def stock() -> None:
        found["stock"] = trial(stock_side, index=0, seconds=seconds, cap_s=stock_cap_s, log_dir=tmp)

    try:
        waiting = threading.Thread(target=stock)
        waiting.start()
        our_trials = ours(
            our_side, trials=trials, seconds=seconds, period_s=maintenance_period_s, log_dir=tmp
        )
        waiting.join()
    finally:
        server.stop()
        stock_server.stop()
    stock_trial = found["stock"]
    stock_trial.update(
        expected_stock_delay(stock_side, stock_trial["broker_calls_per_second"], stock_cap_s)
    )
    worst = max(t["running_again_s"] if t["recovered"] else math.inf for t in our_trials)
    return {
        "benchmark": "recovery",
        "slow_job_seconds": seconds,
        "ours": {
            "settings": {
                "WORKER_HEARTBEAT_TIMEOUT_MS": heartbeat_timeout_ms,
                "BROKER_MAINTENANCE_CHANCE": chance,
                "broker_maintenance": (
                    f"every {maintenance_period_s:g} s" if maintenance_period_s else "clock, 1/min"
                ),
            },
            "expected_window_s": _our_window(heartbeat_timeout_ms / 1000, maintenance_period_s),
            "trials": our_trials,
        },
        "stock": {
            "settings": {
                "heartbeat_timeout_ms": stock_heartbeat_timeout_ms,
                "maintenance_chance_per_million": stock_maintenance_chance,
                "cap_s": stock_cap_s,
            },
            "trial": stock_trial,
        },
        "targets": {
            "ours_running_again_s_worst": report.target(
                worst if math.isfinite(worst) else None, at_most=OURS_TARGET_S
            )
        },
        "load": {"before": load_before, "after": report.load()},
    }


def _our_window(timeout_s: float, period_s: float | None) -> list[float]:
    """Dead once its last beat (every 5 s) is older than the timeout; then the next maintenance
    run (a minute apart; the clock passes every 5 s), then a fetch by the survivor (<= 1 s)."""
    period = period_s or 60.0
    return [max(0.0, timeout_s - 5), round(timeout_s + period + (0 if period_s else 5) + 1, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.recovery", description=__doc__)
    parser.add_argument("--trials", type=int, default=3, help="trials of ours (stock: one)")
    parser.add_argument("--stock-cap-s", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10, help="length of the recovered attempt")
    parser.add_argument("--heartbeat-timeout-ms", type=int, default=30_000)
    parser.add_argument("--stock-heartbeat-timeout-ms", type=int, default=60_000)
    parser.add_argument("--stock-maintenance-chance", type=int, default=1000)
    parser.add_argument(
        "--maintenance-period-s",
        type=float,
        help="send broker_maintenance at this period instead of running the clock (smoke tests)",
    )
    args = parser.parse_args()
    result = run(
        trials=args.trials,
        stock_cap_s=args.stock_cap_s,
        seconds=args.seconds,
        heartbeat_timeout_ms=args.heartbeat_timeout_ms,
        stock_heartbeat_timeout_ms=args.stock_heartbeat_timeout_ms,
        stock_maintenance_chance=args.stock_maintenance_chance,
        maintenance_period_s=args.maintenance_period_s,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
