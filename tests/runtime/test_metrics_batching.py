"""Batched worker metrics: a job that starts and ends inside one flush still shows its series."""

from __future__ import annotations

import dramatiq
from prometheus_client import CollectorRegistry, Gauge, Histogram

from runtime.middleware.metrics import CanonicalPrometheus, observe_many


def test_offsetting_updates_in_one_batch_still_create_the_series() -> None:
    # Given the in-progress gauge of a booted worker, on a registry of its own
    registry = CollectorRegistry()
    middleware = CanonicalPrometheus()
    middleware.inprogress_messages = Gauge(
        "dramatiq_messages_inprogress", "", ["queue_name", "actor_name"], registry=registry
    )
    message = dramatiq.Message(
        queue_name="default.DQ", actor_name="noop", args=(), kwargs={}, options={}
    )
    # When a job starts and ends before the flusher runs (+1 then -1),
    middleware._add("inprogress_messages", message)
    middleware._add("inprogress_messages", message, -1)
    middleware.flush()
    # then the series exists, at zero, under the canonical queue name.
    labels = {"queue_name": "default", "actor_name": "noop"}
    assert registry.get_sample_value("dramatiq_messages_inprogress", labels) == 0.0


def test_durations_observed_together_fill_the_buckets_one_by_one_would() -> None:
    # Given two histograms, one fed a flush's durations together, one observing each
    registry = CollectorRegistry()
    buckets = (5, 25, 100, 1000, float("inf"))
    together = Histogram("together_ms", "", ["queue_name"], buckets=buckets, registry=registry)
    one_by_one = Histogram("one_by_one_ms", "", ["queue_name"], buckets=buckets, registry=registry)
    durations = [0, 5, 6, 25, 26, 99, 100, 101, 5000, 3]
    # When the same durations are observed each way
    observe_many(together.labels("default"), durations)
    for duration in durations:
        one_by_one.labels("default").observe(duration)
    # Then every bucket, the count and the sum agree
    for suffix, le in [("_bucket", str(b)) for b in (5.0, 25.0, 100.0, 1000.0)] + [
        ("_bucket", "+Inf"),
        ("_count", None),
        ("_sum", None),
    ]:
        labels = {"queue_name": "default", **({"le": le} if le else {})}
        expected = registry.get_sample_value(f"one_by_one_ms{suffix}", labels)
        assert registry.get_sample_value(f"together_ms{suffix}", labels) == expected
