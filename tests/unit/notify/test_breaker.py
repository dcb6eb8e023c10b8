"""The Redis circuit breaker and rate limit, on the real redis-server of the test session."""

from __future__ import annotations

import time
import uuid

import pytest

from domain.errors import CircuitOpen, ProviderRejected, ProviderUnavailable
from ops.local_redis import RedisServer
from runtime import CircuitBreaker, rate_limited


def failing() -> None:
    raise ProviderUnavailable("503")


def test_breaker_opens_refuses_then_half_opens_one_probe(redis_server: RedisServer) -> None:
    name = uuid.uuid4().hex
    breaker = CircuitBreaker(redis_server.client, name, threshold=3, open_s=0.3)
    other_worker = CircuitBreaker(redis_server.client, name, threshold=3, open_s=0.3)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            breaker.call(failing)
    assert other_worker.state() == "open"
    with pytest.raises(CircuitOpen):
        other_worker.call(lambda: "never called")
    time.sleep(0.35)
    assert breaker.state() == "half_open"
    with pytest.raises(ProviderUnavailable):
        breaker.call(failing)  # the probe fails: open again
    assert breaker.state() == "open"
    time.sleep(0.35)
    assert other_worker.call(lambda: "ok") == "ok"
    assert breaker.state() == "closed"


def test_rejections_do_not_count_as_provider_failures(redis_server: RedisServer) -> None:
    breaker = CircuitBreaker(redis_server.client, uuid.uuid4().hex, threshold=1, open_s=10)

    def rejected() -> None:
        raise ProviderRejected("bad number")

    with pytest.raises(ProviderRejected):
        breaker.call(rejected)
    assert breaker.state() == "closed"


def test_rate_limit_spreads_calls_over_windows(redis_server: RedisServer) -> None:
    name = uuid.uuid4().hex
    started = time.monotonic()
    for _ in range(5):
        with rate_limited(redis_server.client, name, per_second=2):
            pass
    # 5 calls at 2 per 1-second window need three windows, so at least two boundaries pass.
    assert time.monotonic() - started > 1.0
