"""The exporter's scheduler figures, read from a real Redis."""

from __future__ import annotations

import math
import time

import redis
from prometheus_client import CollectorRegistry, generate_latest

from ops.exporter import BrokerCollector
from ops.local_redis import free_port
from runtime import Control, broker, records
from scheduler.state import ScheduleState


def _scrape() -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(BrokerCollector(Control(broker(), records())))
    values: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_no_clock_ever_means_infinite_heartbeat_age(clean_redis: redis.Redis) -> None:
    values = _scrape()
    assert math.isinf(values["gaveurs_scheduler_heartbeat_age_seconds"])
    assert values["gaveurs_schedulers_alive"] == 0


def test_heartbeats_and_skips_are_exported(clean_redis: redis.Redis) -> None:
    state = ScheduleState(clean_redis)
    now = time.time()
    state.beat("clock-a", now - 10)
    state.beat("clock-b", now - 120)  # silent for two minutes: not alive
    state.mark_skipped("health-check-periodic", "waited too long")
    state.mark_skipped("health-check-periodic", "waited too long")
    values = _scrape()
    assert 9 <= values["gaveurs_scheduler_heartbeat_age_seconds"] <= 12
    assert values["gaveurs_schedulers_alive"] == 1
    assert values['gaveurs_schedule_skips_total{entry="health-check-periodic"}'] == 2


def test_queue_figures_match_known_messages(clean_redis: redis.Redis) -> None:
    from tests.support import jobs

    # Given 1 dead letter, then on `default`: 1 message fetched by a consumer and not yet
    # acknowledged, 3 ready ones (the head sent ~2 s ago) and 2 delayed ones
    dead = jobs.slow.send(jobs.Slow(key="dead", seconds=1))
    consumer = broker().consume("default", prefetch=1, timeout=1000)
    message = next(iter(consumer))
    assert message is not None and message.message_id == dead.message_id
    message.fail()
    consumer.nack(message)
    consumer.close()

    first = jobs.slow.send(jobs.Slow(key="in-flight", seconds=1))
    aged = jobs.slow.message(jobs.Slow(key="old", seconds=1))
    broker().enqueue(aged.copy(message_timestamp=aged.message_timestamp - 2_000))
    for i in range(2):
        jobs.slow.send(jobs.Slow(key=f"ready{i}", seconds=1))
    for i in range(2):
        jobs.slow.send(jobs.Slow(key=f"later{i}", seconds=1), delay_ms=600_000)
    consumer = broker().consume("default", prefetch=1, timeout=1000)
    fetched = next(iter(consumer))
    assert fetched is not None and fetched.message_id == first.message_id

    # Then each figure is what Redis holds
    values = _scrape()
    label = '{queue="default"}'
    assert values[f"gaveurs_queue_ready_messages{label}"] == 3
    assert values[f"gaveurs_queue_delayed_messages{label}"] == 2
    assert values[f"gaveurs_queue_dead_letters{label}"] == 1
    assert values[f"gaveurs_queue_in_flight_messages{label}"] == 1
    assert 1.9 <= values[f"gaveurs_queue_oldest_message_age_seconds{label}"] < 10
    assert values['gaveurs_queue_ready_messages{queue="exports"}'] == 0
    consumer.ack(fetched)
    consumer.close()
    broker().client.delete("dramatiq:default.XQ", "dramatiq:default.XQ.msgs")


def test_scrape_answers_when_redis_is_down() -> None:
    from runtime import records

    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    dead = Control(broker(), records())
    dead.client = unreachable
    registry = CollectorRegistry()
    registry.register(BrokerCollector(dead))
    text = generate_latest(registry).decode()
    assert "gaveurs_exporter_redis_up 0.0" in text
    assert "gaveurs_queue_ready_messages{" not in text
