"""Priority classes: the fetch script's weighted round on a real Redis, requeue by class, queue
figures over every class, and the declarations' checks."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from domain.errors import InvalidInput
from runtime import Control, Payload, PriorityClass, broker, job, records
from runtime.priorities import list_key, parse, smooth_round
from runtime.scripts import lua
from tests.support import jobs


@pytest.fixture()
def queue(clean_redis: redis.Redis) -> Iterator[str]:
    yield "default"
    clean_redis.delete(broker().ack_key("default"))


def _fill(counts: dict[str, int]) -> None:
    for priority_class, count in counts.items():
        for i in range(count):
            jobs.tick.send(jobs.Tick(key=f"{priority_class}-{i}"), priority_class=priority_class)


def _fetch(queue: str, count: int) -> list[Any]:
    consumer = broker().consume(queue, prefetch=count, timeout=100)
    fetched: list[Any] = []
    while len(fetched) < count:
        message = next(consumer)
        if message is not None:
            fetched.append(message)
    consumer.requeue(fetched)
    return fetched


def _classes(messages: list[Any]) -> list[str]:
    return [m.kwargs["key"].split("-")[0] for m in messages]


def test_the_lua_round_is_the_python_round() -> None:
    names = {1: "critical", 2: "high", 3: "normal", 4: "low"}
    match = re.search(r"local ROUND = \{([\d, ]+)\}", lua("fetch"))
    assert match is not None
    in_lua = [names[int(n)] for n in match.group(1).split(",")]
    assert in_lua == [c.value for c in smooth_round()]
    assert Counter(in_lua) == {"critical": 8, "high": 4, "normal": 2, "low": 1}


def test_fetch_takes_classes_by_weighted_turns(queue: str) -> None:
    # Given 20 waiting jobs of each class, the low ones queued first
    _fill({"low": 20, "normal": 20, "high": 20, "critical": 20})

    # When a consumer fetches 30 messages
    classes = _classes(_fetch(queue, 30))

    # Then they come by the interleaved round: 8/15 critical, 4/15 high, 2/15 normal, 1/15 low
    assert classes[:15] == [c.value for c in smooth_round()]
    assert Counter(classes) == {"critical": 16, "high": 8, "normal": 4, "low": 2}


def test_idle_classes_give_their_turns_to_the_highest_waiting(queue: str) -> None:
    # Given only high and low jobs waiting
    _fill({"low": 20, "high": 40})

    # When 30 are fetched, low still gets its own turn of each round, and no more
    classes = _classes(_fetch(queue, 30))
    assert Counter(classes) == {"high": 28, "low": 2}


def test_a_handed_back_message_keeps_its_class(queue: str) -> None:
    # Given a critical and a normal job fetched by a consumer, then handed back (a shutdown)
    _fill({"critical": 1, "normal": 1})
    _fetch(queue, 2)

    # Then each is back on its own class's list
    client = broker().client
    assert client.llen(list_key("dramatiq", queue, PriorityClass.CRITICAL)) == 1
    assert client.llen(list_key("dramatiq", queue, PriorityClass.NORMAL)) == 1


def test_queue_figures_count_every_class(queue: str) -> None:
    _fill({"critical": 2, "high": 1, "low": 3})
    (stats,) = Control(broker(), records()).queue_stats((queue,))
    assert stats.ready == 6 and stats.in_flight == 0 and stats.oldest_age_seconds >= 0
    dropped = Control(broker(), records()).purge(queue)
    assert dropped["ready"] == 6


def test_requests_choose_a_class_within_the_declared_range() -> None:
    assert jobs.tick.resolve_class(None) is PriorityClass.NORMAL
    assert jobs.tick.resolve_class("critique") is PriorityClass.CRITICAL
    assert jobs.slow.resolve_class("normal") is PriorityClass.NORMAL
    with pytest.raises(InvalidInput, match="may run at priority class normal, not critical"):
        jobs.slow.resolve_class("critical")
    with pytest.raises(InvalidInput, match="unknown priority class 'urgent'"):
        jobs.tick.resolve_class("urgent")
    assert parse("Basse") is PriorityClass.LOW


def test_a_default_outside_its_range_fails_at_declaration() -> None:
    class Nothing(Payload):
        pass

    with pytest.raises(ValueError, match="must be \\(lowest, highest\\) and include"):
        job(
            queue="default",
            payload=Nothing,
            priority_class="high",
            priority_range=("low", "normal"),
        )
