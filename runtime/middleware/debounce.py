"""Debounced jobs: requests for the same work within a window run once.

A job declared `@job(debounce="refresh-{full}", debounce_ms=60_000)` is sent with a delay of
its window, and its key (`debounce_key` message option) names that pending run in Redis until
the run starts. A request made meanwhile gets the pending run's task id instead of a new job
(`Submitted(duplicate=True)`): that run starts after the request, so it covers it. A request
made once the run has started (its data may predate the request) claims the key for a new run.

The claim is lua/unique_claim.lua in its `until_started` mode: one round trip, and a holder
whose record left PENDING, or that never got a record (its enqueue failed), frees the key.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.middleware import Middleware

from runtime.middleware.uniqueness import claim
from runtime.scripts import lua

KEY_PREFIX = "gaveurs:debounce:"
#: Past the window, how long a key may outlive its run (a worker busy when the delay ends).
KEY_MARGIN_MS = 3_600_000


class Debounce(Middleware):
    """Claims the debounce key at enqueue; a pending run with the same key is returned."""

    def __init__(self, *, client: redis.Redis, record_prefix: str) -> None:
        self.client = client
        self.record_prefix = record_prefix
        self._claim = client.register_script(lua("unique_claim"))

    @property
    def actor_options(self) -> set[str]:
        return {"debounce"}

    @staticmethod
    def key_of(message: dramatiq.Message[Any]) -> str | None:
        debounce_key = message.options.get("debounce_key")
        return f"{KEY_PREFIX}{message.actor_name}:{debounce_key}" if debounce_key else None

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        key = self.key_of(message)
        if key is None:
            return
        window = broker.get_actor(message.actor_name).options.get("debounce", 0)
        claim(
            self._claim,
            key,
            message,
            option="debounce_key",
            ttl_ms=window + KEY_MARGIN_MS,
            record_prefix=self.record_prefix,
            mode="until_started",
        )
