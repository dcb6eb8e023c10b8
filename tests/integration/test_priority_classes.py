"""Priority classes through real worker processes: a critical job overtakes a deep low backlog,
and low work keeps its share under sustained high-class load (runtime/priorities.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from runtime import Control, State, broker, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow

ORDER = f"{jobs.PREFIX}order"


@pytest.fixture()
def order(clean_redis: redis.Redis, demo_database: str) -> Iterator[redis.Redis]:
    clean_redis.delete(ORDER)
    yield clean_redis
    broker().flush("default")
    clean_redis.delete(ORDER)


def _send(priority_class: str, count: int) -> None:
    for i in range(count):
        jobs.tick.send(jobs.Tick(key=f"{priority_class}-{i}"), priority_class=priority_class)


def test_a_critical_job_starts_within_a_second_behind_10000_low_ones(order: redis.Redis) -> None:
    # Given 10,000 low-class jobs waiting, and a worker pool busy with them
    _send("low", 10_000)
    worker = WorkerProcess(order, threads=4)
    try:
        wait_for(lambda: order.llen(ORDER) >= 200, timeout=60, what="the pool to be busy")

        # When a critical job of the same queue is sent
        critical = jobs.tick.send(jobs.Tick(key="critical-0"), priority_class="critical")
        done = wait_for(
            lambda: (r := records().get(critical.message_id)) and r.state is State.SUCCESS and r,
            timeout=30,
            what="the critical job",
        )
        (stats,) = Control(broker(), records()).queue_stats(("default",))
    finally:
        worker.stop()

    # Then it started within a second, while thousands of low jobs still waited
    assert done.started_at is not None and done.enqueued_at is not None
    waited_ms = done.started_at - done.enqueued_at
    print(f"critical job behind {stats.ready} low ones started after {waited_ms} ms")
    assert waited_ms < 1000, waited_ms
    assert stats.ready > 5_000, stats


def test_low_class_keeps_its_share_under_sustained_high_load(order: redis.Redis) -> None:
    # Given more high-class work than the pool can do, and low-class work queued before it
    _send("low", 500)
    _send("high", 3_000)

    # When the pool has run 900 jobs
    worker = WorkerProcess(order, threads=4)
    try:
        wait_for(lambda: order.llen(ORDER) >= 900, timeout=120, what="900 jobs")
    finally:
        worker.stop()

    # Then low jobs ran all along, at about their guaranteed share of 1/15 (6.7 %)
    ran = [key.decode().split("-")[0] for key in order.lrange(ORDER, 0, 899)]
    share = ran.count("low") / len(ran)
    print(f"low-class share under high-class saturation: {share:.1%} of {len(ran)} jobs")
    assert 0.04 <= share <= 0.10, share
    assert "low" in ran[:100] and "low" in ran[-100:]
