"""Batched worker metrics: a job that starts and ends inside one flush still shows its series."""

from __future__ import annotations

import dramatiq
from prometheus_client import CollectorRegistry, Gauge

from runtime.middleware.metrics import CanonicalPrometheus


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
