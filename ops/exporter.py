"""The `metrics` process: what worker middleware cannot see, read from Redis at each scrape.

Per queue: ready, delayed, dead letters, in flight, age of the oldest ready message; jobs by
state; live worker processes per queue; clock heartbeats and skipped scheduled runs; the largest
clock skew of a live process; jobs re-sent from the journal. A handful of pipelined reads per
scrape, no KEYS/SCAN.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

import runtime
from domain.platform.settings import Settings, get_settings
from ops.autoscale import DurationSampler, Policy, desired_workers
from runtime import QUEUES, RECOVERED_KEY, Control, live_workers
from scheduler.state import ALIVE_WINDOW_S, ScheduleState

logger = logging.getLogger(__name__)


#: The autoscaling policy when none is given (the settings' defaults).
DEFAULT_POLICY = Policy(target_drain_s=60.0, min_workers=0, max_workers=10, default_job_ms=1000.0)


class BrokerCollector(Collector):
    def __init__(self, control: Control, *, autoscale: Policy = DEFAULT_POLICY) -> None:
        self.control = control
        self.autoscale = autoscale
        self.durations = DurationSampler(control.client, control.records)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Every figure, or only `gaveurs_exporter_redis_up 0` when Redis cannot be read: the
        scrape still answers, so "Redis down" and "exporter down" stay different alerts."""
        up = GaugeMetricFamily("gaveurs_exporter_redis_up", "1 when this scrape could read Redis.")
        try:
            families = list(self._collect())
        except redis.RedisError as error:
            logger.warning("scrape without Redis: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        started = time.perf_counter()
        gauges = {
            "ready": GaugeMetricFamily(
                "gaveurs_queue_ready_messages", "Messages waiting in the queue.", labels=["queue"]
            ),
            "delayed": GaugeMetricFamily(
                "gaveurs_queue_delayed_messages",
                "Messages waiting for their eta (retries, delays).",
                labels=["queue"],
            ),
            "dead_letters": GaugeMetricFamily(
                "gaveurs_queue_dead_letters",
                "Dead-lettered messages kept for inspection.",
                labels=["queue"],
            ),
            "in_flight": GaugeMetricFamily(
                "gaveurs_queue_in_flight_messages",
                "Messages fetched by workers and not yet acknowledged.",
                labels=["queue"],
            ),
            "oldest_age_seconds": GaugeMetricFamily(
                "gaveurs_queue_oldest_message_age_seconds",
                "Age of the oldest ready message.",
                labels=["queue"],
            ),
        }
        queue_stats = self.control.queue_stats(QUEUES)
        for stats in queue_stats:
            for name, gauge in gauges.items():
                gauge.add_metric([stats.name], getattr(stats, name))
        yield from gauges.values()

        jobs = GaugeMetricFamily(
            "gaveurs_jobs", "Job records by state (within retention).", labels=["state"]
        )
        for state, count in self.control.records.counts().items():
            jobs.add_metric([state.value], count)
        yield jobs

        workers = GaugeMetricFamily(
            "gaveurs_workers_alive", "Live worker processes consuming the queue.", labels=["queue"]
        )
        alive = dict.fromkeys(QUEUES, 0)
        threads = dict.fromkeys(QUEUES, 1)
        living = live_workers(self.control.client)
        for worker in living:
            for queue in worker.get("queues", []):
                alive[queue] = alive.get(queue, 0) + 1
                threads[queue] = max(threads.get(queue, 1), int(worker.get("threads", 1)))
        for queue, count in alive.items():
            workers.add_metric([queue], count)
        yield workers

        mean_ms = self.durations.update()
        desired = GaugeMetricFamily(
            "gaveurs_queue_desired_workers",
            "Worker processes that would clear the queue's waiting work within the target "
            "drain time (the autoscaling signal).",
            labels=["queue"],
        )
        for stats in queue_stats:
            count = desired_workers(
                ready=stats.ready,
                in_flight=stats.in_flight,
                oldest_age_s=stats.oldest_age_seconds,
                job_ms=mean_ms.get(stats.name, self.autoscale.default_job_ms),
                threads=threads.get(stats.name, 1),
                alive=alive.get(stats.name, 0),
                policy=self.autoscale,
            )
            desired.add_metric([stats.name], count)
        yield desired

        yield from self._scheduler(living)

        recovered = CounterMetricFamily(
            "gaveurs_jobs_recovered",
            "Accepted jobs found missing from Redis and re-sent from the database journal.",
        )
        recovered.add_metric([], int(self.control.client.get(RECOVERED_KEY) or 0))
        yield recovered

        scrape = GaugeMetricFamily(
            "gaveurs_exporter_scrape_duration_seconds", "Time this scrape spent reading Redis."
        )
        scrape.add_metric([], time.perf_counter() - started)
        yield scrape

    def _scheduler(
        self, living: list[dict[str, Any]]
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = ScheduleState(self.control.client)
        now = time.time()
        beats = state.heartbeats()
        offsets = [abs(int(w.get("clock_offset_ms", 0))) for w in living]
        clocks_alive = {sid for sid, at in beats.items() if now - at <= ALIVE_WINDOW_S}
        offsets += [abs(ms) for sid, ms in state.clock_offsets().items() if sid in clocks_alive]
        skew = GaugeMetricFamily(
            "gaveurs_clock_skew_seconds",
            "Largest difference between a live worker's or clock's wall clock and Redis's.",
        )
        skew.add_metric([], max(offsets, default=0) / 1000)
        yield skew
        age = GaugeMetricFamily(
            "gaveurs_scheduler_heartbeat_age_seconds",
            "Seconds since the most recent beat of any clock (+Inf when none ever beat).",
        )
        age.add_metric([], now - max(beats.values()) if beats else math.inf)
        yield age
        alive = GaugeMetricFamily(
            "gaveurs_schedulers_alive",
            f"Clock processes that beat within the last {ALIVE_WINDOW_S:.0f} s.",
        )
        alive.add_metric([], sum(1 for at in beats.values() if now - at <= ALIVE_WINDOW_S))
        yield alive
        skips = CounterMetricFamily(
            "gaveurs_schedule_skips",
            "Scheduled runs skipped because they started later than their entry allows.",
            labels=["entry"],
        )
        for entry, count in sorted(state.skips().items()):
            skips.add_metric([entry], count)
        yield skips


class SentinelCollector(Collector):
    """What the Sentinels say of the master: its configuration epoch (one more at each
    failover, for the GaveursRedisFailover alert) and whether a usable master is named."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "gaveurs_redis_sentinel_master_ok",
            "1 when a Sentinel names a master that is not down (0: no master, or none answers).",
        )
        try:
            state = runtime.sentinel_master(self.settings)
        except (redis.RedisError, runtime.SentinelMisconfigured) as error:
            logger.warning("scrape without a Sentinel: %s", error)
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 0 if state.get("is_sdown") or state.get("is_odown") else 1)
        yield ok
        epoch = GaugeMetricFamily(
            "gaveurs_redis_sentinel_master_epoch",
            "The master's configuration epoch, raised by one at each Sentinel failover.",
        )
        epoch.add_metric([], float(state.get("config-epoch", 0)))
        yield epoch


class SearchCollector(Collector):
    """Freshness and size of the search index, read from the database at each scrape."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy.exc import SQLAlchemyError

        from domain import search

        up = GaugeMetricFamily(
            "gaveurs_exporter_database_up", "1 when this scrape could read the search index."
        )
        try:
            figures = search.status(self.engine)
        except SQLAlchemyError as error:
            logger.warning("scrape without the database: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        lag = GaugeMetricFamily(
            "gaveurs_search_index_lag_seconds",
            "Age of the oldest change not yet in the search index (0 when none is pending).",
        )
        lag.add_metric([], figures["lag_s"])
        yield lag
        pending = GaugeMetricFamily(
            "gaveurs_search_pending_changes", "Changes to indexed rows waiting for index_changes."
        )
        pending.add_metric([], figures["pending_changes"])
        yield pending
        documents = GaugeMetricFamily(
            "gaveurs_search_documents", "Searchable documents by kind.", labels=["kind"]
        )
        for kind, count in figures["documents"].items():
            documents.add_metric([kind], count)
        yield documents


def main() -> None:

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    built = runtime.setup(settings)
    policy = Policy(
        target_drain_s=settings.autoscale_target_drain_s,
        min_workers=settings.autoscale_min_workers,
        max_workers=settings.autoscale_max_workers,
        default_job_ms=settings.autoscale_default_job_ms,
    )
    REGISTRY.register(BrokerCollector(Control(built.broker, built.records), autoscale=policy))
    REGISTRY.register(SearchCollector(built.engine))
    if settings.redis_sentinels:
        REGISTRY.register(SentinelCollector(settings))
    start_http_server(settings.exporter_port, addr=settings.metrics_host)
    logger.info("exporter on http://%s:%d/metrics", settings.metrics_host, settings.exporter_port)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
