"""Batching (issue 21, part 6): what debouncing `refresh_aggregates` saves, in runs and in Redis
commands, beside the same requests sent as plain jobs and as unique jobs (its declaration
before: one queued or running per key).

R requests for the aggregates refresh arrive evenly over S seconds (the seed's "50 times in a
minute", scaled down), sent through `Job.submit` as the API does, while one real worker runs
what they make. Each side counts the runs (distinct task ids) and the Redis commands processed
from the first request until the last run has ended, less the idle worker's own polling
(measured before, per second). The debounce window is the spread plus a margin, so every
request of a round falls in the window the first one opens.

    python -m ops.bench.batching [--requests 50 --spread-s 10 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from ops.bench import report
from ops.bench.env import isolated, worker

FINAL = {b"SUCCESS", b"FAILURE", b"REVOKED"}


def commands(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def _sender(side: str) -> Callable[[], str]:
    """One request of a side: the task id it was answered with."""
    from actors.maintenance import RefreshAggregates, refresh_aggregates

    payload = RefreshAggregates()
    if side == "debounced":
        return lambda: refresh_aggregates.submit(payload).task_id
    from runtime import DuplicateJob, broker

    def send(**options: Any) -> str:
        message = refresh_aggregates.actor.message_with_options(
            kwargs=payload.model_dump(mode="json"), **options
        )
        try:
            return str(broker().enqueue(message).message_id)
        except DuplicateJob as duplicate:
            return duplicate.existing_task_id

    if side == "unique":
        return lambda: send(unique_key="refresh-False")
    return send


def _ended(client: redis.Redis, task_ids: set[str]) -> bool:
    from runtime import records

    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(records().key(task_id), "state")
    return all(state in FINAL for state in pipe.execute())


def round_of(
    client: redis.Redis, side: str, *, requests: int, spread_s: float, idle_per_s: float
) -> dict[str, float]:
    send = _sender(side)
    interval = spread_s / max(requests - 1, 1)
    before, started = commands(client), time.perf_counter()
    task_ids = set()
    for n in range(requests):
        task_ids.add(send())
        if n < requests - 1:
            time.sleep(interval)
    deadline = time.monotonic() + 300
    while not _ended(client, task_ids):
        assert time.monotonic() < deadline, f"{side}: runs did not end"
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    spent = commands(client) - before - idle_per_s * elapsed
    return {"runs": len(task_ids), "redis_commands": round(spent), "seconds": round(elapsed, 2)}


def _idle_rate(client: redis.Redis, seconds: float = 2.0) -> float:
    before = commands(client)
    time.sleep(seconds)
    return (commands(client) - before) / seconds


def run(*, requests: int, spread_s: float, rounds: int) -> dict[str, Any]:
    window_ms = int(spread_s * 1000 * 1.2) + 200
    server, _ = isolated(AGGREGATES_DEBOUNCE_MS=str(window_ms))
    try:
        client = server.client
        before = report.load()
        log_dir = Path(tempfile.mkdtemp(prefix="gaveurs-bench-batching-"))
        sides = ("plain", "unique", "debounced")
        found: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        with worker(client, module="actors", queue="default", threads=4, log_dir=log_dir):
            idle = _idle_rate(client)
            for _ in range(rounds):
                for side in sides:
                    found[side].append(
                        round_of(
                            client, side, requests=requests, spread_s=spread_s, idle_per_s=idle
                        )
                    )

        def median(side: str, figure: str) -> float:
            return round(statistics.median(r[figure] for r in found[side]), 1)

        summary = {
            side: {
                "runs_median": median(side, "runs"),
                "redis_commands_median": median(side, "redis_commands"),
                "seconds_median": median(side, "seconds"),
                "rounds": found[side],
            }
            for side in sides
        }
        plain_commands = median("plain", "redis_commands")
        saved = 1 - median("debounced", "redis_commands") / plain_commands
        return {
            "benchmark": "batching",
            "requests": requests,
            "spread_s": spread_s,
            "debounce_window_ms": window_ms,
            "rounds": rounds,
            "idle_worker_commands_per_s": round(idle, 1),
            "refresh_aggregates": summary,
            "redis_commands_saved_vs_plain": round(saved, 3),
            "runs_saved_vs_plain": median("plain", "runs") - median("debounced", "runs"),
            "targets": {
                # The seed's case: every request of the window is covered by one run.
                "debounced_runs_per_window": report.target(median("debounced", "runs"), at_most=1),
                "debounced_redis_commands_vs_plain": report.target(
                    round(1 - saved, 3), at_most=0.5
                ),
            },
            "load": {"before": before, "after": report.load()},
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--spread-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        json.dumps(
            run(requests=args.requests, spread_s=args.spread_s, rounds=args.rounds), indent=2
        )
    )


if __name__ == "__main__":
    main()
