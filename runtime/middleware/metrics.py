"""Dramatiq's Prometheus middleware with canonical queue labels, a delayed gauge that balances,
and updates batched off the job path.

Stock Dramatiq labels delayed messages with the `.DQ` queue name when they enter the delay queue
and with the canonical name when they run, so `dramatiq_delayed_messages_inprogress` climbs on one
series and goes negative on the other. Here every series uses the canonical queue name, and each
decrement only follows its own increment (skipped messages never incremented in-progress).

Each update of a multiprocess Prometheus metric takes a lock and writes an mmap'ed file, five of
them per job, under the GIL every worker thread wants: here hooks only add to an in-memory tally
and a thread applies it every FLUSH_S (figures lag by that much; Prometheus scrapes every 15 s),
durations included: one write per histogram bucket per flush, not two per job.
"""

from __future__ import annotations

import os
import tempfile
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.middleware import prometheus
from dramatiq.middleware.prometheus import Prometheus

if TYPE_CHECKING:
    # Only then: prometheus_client picks its multiprocess storage when first imported, which
    # Dramatiq's middleware does once it has set the directory up (after_process_boot).
    from prometheus_client import Histogram

FLUSH_S = 0.5
Labels = tuple[str, str]


def configure_prometheus(host: str | None = None) -> None:
    """Dramatiq's Prometheus middleware reads its host, port and directory from the environment
    at import; read them when the runtime is set up instead, so the server binds to
    WORKER_METRICS_HOST (loopback by default: the port has no auth) and two worker processes on
    one machine never publish each other's samples (one directory per metrics port)."""
    port = os.environ.get("dramatiq_prom_port", "9191")
    if host is None:  # the forked exposition process: an entry point of its own
        from domain.platform.settings import get_settings

        host = get_settings().worker_metrics_host
    prometheus.HTTP_HOST = host
    prometheus.HTTP_PORT = int(port)
    prometheus.DB_PATH = os.environ.get(
        "dramatiq_prom_db", os.path.join(tempfile.gettempdir(), f"gaveurs-prom-{port}")
    )
    os.makedirs(prometheus.DB_PATH, exist_ok=True)


def serve_metrics() -> int:
    """The exposition server Dramatiq's CLI forks; that process never runs `runtime.setup`."""
    configure_prometheus()
    return int(prometheus._run_exposition_server() or 0)


def labels(message: dramatiq.Message[Any] | MessageProxy) -> Labels:
    return q_name(message.queue_name), message.actor_name


def observe_many(histogram: Histogram, values: list[int]) -> None:
    """`histogram.observe(v)` for each value, with one write per bucket and one for the sum:
    a multiprocess histogram's observe writes its mmap'ed file twice, per job otherwise."""
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bucket with value <= bound
    histogram._sum.inc(sum(values))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


class CanonicalPrometheus(Prometheus):
    """Worker metrics on `dramatiq_prom_port`; only meaningful in worker processes."""

    def __init__(self) -> None:
        super().__init__()
        self.in_progress: set[str] = set()
        self._lock = threading.Lock()
        self._deltas: Counter[tuple[str, Labels]] = Counter()
        self._durations: list[tuple[Labels, int]] = []
        self._stop = threading.Event()

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_metrics]

    def _booted(self) -> bool:
        # Producers (the API) never boot a worker process, so the metrics objects do not exist.
        return hasattr(self, "total_messages")

    def _add(self, metric: str, message: dramatiq.Message[Any] | MessageProxy, n: int = 1) -> None:
        with self._lock:
            self._deltas[(metric, labels(message))] += n

    def flush(self) -> None:
        with self._lock:
            deltas, self._deltas = self._deltas, Counter()
            durations, self._durations = self._durations, []
        for (metric, label_values), n in deltas.items():
            # A +1 and -1 in one batch still create the series (at 0), as stock Dramatiq does:
            # a gauge that never appears cannot be graphed or alerted on.
            series = getattr(self, metric).labels(*label_values)
            if n:
                series.inc(n)
        by_labels: dict[Labels, list[int]] = {}
        for label_values, duration_ms in durations:
            by_labels.setdefault(label_values, []).append(duration_ms)
        for label_values, values in by_labels.items():
            observe_many(self.message_durations.labels(*label_values), values)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._booted():
            threading.Thread(target=self._flusher, name="metrics-flush", daemon=True).start()

    def _flusher(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._booted():
            self.flush()
        super().after_worker_shutdown(broker, worker)

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted():
            self._add("total_rejected_messages", message)

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        # Count a retry once, when it is scheduled, not again when it leaves the delay queue.
        if self._booted() and delay and "retries" in message.options:
            self._add("total_retried_messages", message)

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted() and message.message_id not in self.delayed_messages:
            self.delayed_messages.add(message.message_id)
            self._add("inprogress_delayed_messages", message)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not self._booted():
            return
        message_id, series = message.message_id, labels(message)
        self.message_start_times[message_id] = current_millis()
        self.in_progress.add(message_id)
        with self._lock:
            if message_id in self.delayed_messages:
                self.delayed_messages.discard(message_id)
                self._deltas[("inprogress_delayed_messages", series)] -= 1
            self._deltas[("inprogress_messages", series)] += 1

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not self._booted():
            return
        message_id, series = message.message_id, labels(message)
        started = self.message_start_times.pop(message_id, None)
        with self._lock:
            deltas = self._deltas
            if message_id in self.delayed_messages:
                # Skipped straight out of the delay queue (e.g. cancelled): no longer delayed.
                self.delayed_messages.discard(message_id)
                deltas[("inprogress_delayed_messages", series)] -= 1
            if message_id in self.in_progress:
                self.in_progress.discard(message_id)
                deltas[("inprogress_messages", series)] -= 1
            if started is not None:
                self._durations.append((series, current_millis() - started))
            deltas[("total_messages", series)] += 1
            if exception is not None:
                deltas[("total_errored_messages", series)] += 1

    after_skip_message = after_process_message
