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

from runtime.middleware.uniqueness import KeyClaim

KEY_PREFIX = "gaveurs:debounce:"
#: Past the window, how long a key may outlive its run (a worker busy when the delay ends).
KEY_MARGIN_MS = 3_600_000


class Debounce(KeyClaim):
    """Claims the debounce key at enqueue; a pending run with the same key is returned."""

    option, key_prefix, mode = "debounce_key", KEY_PREFIX, "until_started"

    @property
    def actor_options(self) -> set[str]:
        return {"debounce"}

    def ttl_ms(self, actor_options: dict[str, Any]) -> int:
        return int(actor_options.get("debounce", 0)) + KEY_MARGIN_MS
