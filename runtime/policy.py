"""Execution policy value objects: what a reader sees on an actor's decorator."""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis
import sqlalchemy.exc

from domain.errors import TransientError

#: Errors that may heal by themselves. Everything else fails at once: retrying a bug or bad data
#: only delays the dead letter and hides the reason.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
)

MAX_RETRIES_LIMIT = 1000
#: Dramatiq's Redis broker refuses delays longer than 7 days.
MAX_BACKOFF_LIMIT_MS = 7 * 86_400_000
#: Upward jitter keeps delays growing (60 s -> 120 s -> 240 s stay ordered) while spreading herds.
JITTER = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    """How a job is retried: only `retry_on` errors, at most `max_retries` times, growing delays.

    The delay before retry n (0-based) is min(min_backoff_ms * 2**n, max_backoff_ms), stretched by
    a random 0-20 %.
    """

    max_retries: int = 3
    min_backoff_ms: int = 60_000
    max_backoff_ms: int = 3_600_000
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= MAX_RETRIES_LIMIT:
            raise ValueError(f"RetryPolicy.max_retries must be within 0..{MAX_RETRIES_LIMIT}")
        if not 0 <= self.min_backoff_ms <= self.max_backoff_ms <= MAX_BACKOFF_LIMIT_MS:
            raise ValueError(
                "RetryPolicy needs 0 <= min_backoff_ms <= max_backoff_ms <= 7 days "
                f"(got {self.min_backoff_ms} and {self.max_backoff_ms})"
            )
        bad = [
            c for c in self.retry_on if not (isinstance(c, type) and issubclass(c, BaseException))
        ]
        if bad:
            raise ValueError(f"RetryPolicy.retry_on takes exception classes, not {bad!r}")

    def should_retry(self, retries: int, exception: BaseException) -> bool:
        """`retries` is how many retries already happened before this failure."""
        return retries < self.max_retries and isinstance(exception, self.retry_on)

    def backoff_ms(self, retries: int) -> int:
        base = min(self.min_backoff_ms * 2 ** min(retries, 32), self.max_backoff_ms)
        return min(int(base * (1 + random.uniform(0, JITTER))), MAX_BACKOFF_LIMIT_MS)


NO_RETRY = RetryPolicy(max_retries=0)
