"""Per-provider guards shared by every worker through Redis: a circuit breaker and a rate limit.

Breaker states live in one hash per provider (`gaveurs:breaker:<provider>`):
closed (failures < threshold) -> open (calls refused with CircuitOpen until `open_until_ms`) ->
half-open (one probe at a time, elected with SET NX; success closes, failure re-opens).
Admission and failure counting are Lua scripts on Redis server time: atomic across workers.
CircuitOpen is a TransientError, so a refused job goes back to the queue with backoff instead of
calling a provider that is down. The rate limit is Dramatiq's WindowRateLimiter on the same Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import redis
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from domain.errors import CircuitOpen, ProviderUnavailable, ServiceUnavailable
from runtime.scripts import lua

T = TypeVar("T")
PREFIX = "gaveurs:breaker:"
#: How long a caller waits for a rate-limit slot before giving the job back to the queue.
RATE_WAIT_S = 2.0


class CircuitBreaker:
    def __init__(
        self, client: redis.Redis, provider: str, *, threshold: int, open_s: float
    ) -> None:
        self.client = client
        self.provider = provider
        self.key = PREFIX + provider
        self.probe_key = self.key + ":probe"
        self.threshold = threshold
        self.open_ms = max(1, int(open_s * 1000))
        self._admit_script = client.register_script(lua("breaker_admit"))
        self._failed_script = client.register_script(lua("breaker_failed"))

    def state(self) -> str:
        raw = self.client.hgetall(self.key)
        failures = int(raw.get(b"failures", 0))
        if failures < self.threshold:
            return "closed"
        seconds, micros = self.client.time()
        now_ms = seconds * 1000 + micros // 1000
        return "open" if now_ms < int(raw.get(b"open_until_ms", 0)) else "half_open"

    def _admit(self) -> bool:
        """True when this call is a half-open probe; raises CircuitOpen when calls must wait.

        State check and probe election are one Lua call: two workers can never both decide
        they are the probe, nor slip through between "threshold reached" and "opened"."""
        admitted = int(
            self._admit_script(keys=[self.key, self.probe_key], args=[self.threshold, self.open_ms])
        )
        if admitted < 0:
            raise CircuitOpen(
                f"{self.provider} circuit open after repeated failures; retrying later"
            )
        return admitted == 1

    def _failed(self) -> None:
        self._failed_script(keys=[self.key, self.probe_key], args=[self.threshold, self.open_ms])

    def _succeeded(self) -> None:
        self.client.delete(self.key, self.probe_key)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` through the breaker; only ProviderUnavailable counts as a provider failure."""
        self._admit()
        try:
            result = fn()
        except ProviderUnavailable:
            self._failed()
            raise
        except BaseException:
            # A rejected message (bad number) says nothing about the provider's health.
            self.client.delete(self.probe_key)
            raise
        self._succeeded()
        return result


@contextmanager
def rate_limited(client: redis.Redis, provider: str, *, per_second: int) -> Iterator[None]:
    """Wait up to RATE_WAIT_S for a slot of the provider's per-second window, else retry later."""
    limiter = WindowRateLimiter(
        RedisBackend(client=client), f"notify-{provider}", limit=per_second, window=1
    )
    deadline = time.monotonic() + RATE_WAIT_S
    while True:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if acquired:
                yield
                return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"{provider} rate limit of {per_second}/s reached")
        time.sleep(0.05)
