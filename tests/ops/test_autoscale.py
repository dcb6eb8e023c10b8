"""The autoscaling signal: the formula, and the exporter's gauge over a real backlog drained by
a real worker."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry, generate_latest

from ops.autoscale import Policy, desired_workers
from ops.exporter import BrokerCollector
from runtime import Control, broker, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

POLICY = Policy(target_drain_s=60, min_workers=0, max_workers=10, default_job_ms=500)


def _desired(**figures: float) -> int:
    base = {"ready": 0, "in_flight": 0, "oldest_age_s": 0.0, "job_ms": 1000.0, "threads": 4}
    base.update(figures)
    return desired_workers(
        ready=int(base["ready"]),
        in_flight=int(base["in_flight"]),
        oldest_age_s=base["oldest_age_s"],
        job_ms=base["job_ms"],
        threads=int(base["threads"]),
        alive=int(figures.get("alive", 1)),
        policy=POLICY,
    )


def test_nothing_to_do_scales_to_the_minimum() -> None:
    assert _desired() == 0
    floor = Policy(target_drain_s=60, min_workers=1, max_workers=10, default_job_ms=500)
    assert (
        desired_workers(
            ready=0, in_flight=0, oldest_age_s=0, job_ms=1, threads=1, alive=3, policy=floor
        )
        == 1
    )


def test_the_recommendation_follows_the_work_waiting() -> None:
    # 240 jobs of 1 s on 4 threads: 60 s of one process's time, within the 60 s target
    assert _desired(ready=240) == 1
    assert _desired(ready=241) == 2
    assert _desired(ready=1000, job_ms=2000) == 9
    assert _desired(ready=10, in_flight=4, job_ms=10) == 1  # any work needs a worker
    assert _desired(ready=100_000) == 10  # clamped to the maximum


def test_a_backlog_older_than_the_target_asks_for_one_more_than_alive() -> None:
    assert _desired(ready=5, job_ms=10, oldest_age_s=90, alive=3) == 4


def _scrape(collector: BrokerCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    values: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("gaveurs_queue_desired_workers{"):
            name, value = line.rsplit(" ", 1)
            values[name.split('"')[1]] = float(value)
    return values


def test_the_exporter_recommends_workers_for_a_backlog_then_falls_back(
    clean_redis: redis.Redis, demo_database: str
) -> None:
    collector = BrokerCollector(Control(broker(), records()), autoscale=POLICY)
    assert _scrape(collector)["default"] == 0
    # (that scrape read the durations of earlier tests' jobs; this story's jobs last 500 ms)
    collector.durations.mean_ms["default"] = 500.0

    # Given 1,500 jobs waiting on `default` and no worker
    for i in range(1_500):
        jobs.tick.send(jobs.Tick(key=f"autoscale-{i}"))

    # Then the exporter asks for 1,500 x 0.5 s / 60 s = 13 single-thread workers, capped at 10
    assert _scrape(collector)["default"] == 10

    # When a worker drains the queue
    worker = WorkerProcess(clean_redis, threads=4)
    try:
        wait_for(
            lambda: Control(broker(), records()).queue_stats(("default",))[0].ready == 0,
            timeout=60,
            what="the backlog to drain",
        )
        wait_for(lambda: _scrape(collector)["default"] == 0, timeout=30, what="no work left")
    finally:
        worker.stop()

    # Then the recommendation fell back to 0, and the jobs' real durations are now known
    assert 0 <= collector.durations.mean_ms["default"] < POLICY.default_job_ms
    clean_redis.delete(f"{jobs.PREFIX}order")
