"""Helpers for tests that touch the clocks' shared state in Redis."""

from __future__ import annotations

import redis


def clear_scheduler_state(client: redis.Redis) -> None:
    keys = list(client.scan_iter("gaveurs:scheduler:*", count=1000))
    if keys:
        client.delete(*keys)
