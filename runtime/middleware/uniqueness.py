"""Unique jobs: while a job with the same key is queued or running, sending another returns it.

The key (`unique_key` message option, set by `Job.send` from the actor's `unique` template) maps
to the owning task id in Redis. It is released when the job ends (success, failure, cancel) and
kept while it waits for a retry. A key whose holder has ended (its record says so) is free even
before its release runs; a TTL bounds how long a lost job can block its key.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, MiddlewareError
from dramatiq_abort import Abort

from runtime.middleware.job_records import is_duplicate
from runtime.scripts import lua

KEY_PREFIX = "gaveurs:unique:"
#: A key held by a job with no record for this long is taken over (see lua/unique_claim.lua).
CLAIM_GRACE_MS = 10_000


class DuplicateJob(MiddlewareError):
    """A job with the same uniqueness key is already queued or running."""

    def __init__(self, key: str, existing_task_id: str) -> None:
        super().__init__(f"a job with key {key!r} is already active: {existing_task_id}")
        self.key = key
        self.existing_task_id = existing_task_id


def claim(
    script: Any,
    key: str,
    message: dramatiq.Message[Any],
    *,
    option: str,
    ttl_ms: int,
    record_prefix: str,
    mode: str = "",
) -> None:
    """Claim `key` (made of the message's `option`) for the message (lua/unique_claim.lua), or
    raise DuplicateJob naming the job that holds it. A retry or a delayed-queue move
    re-enqueues the same message: it already owns the key."""
    owner = script(
        keys=[key], args=[message.message_id, ttl_ms, record_prefix, CLAIM_GRACE_MS, mode]
    ).decode()
    if owner != message.message_id:
        raise DuplicateJob(message.options[option], owner)


class Uniqueness(Middleware):
    """Claims the key at enqueue, releases it when the job is over."""

    def __init__(
        self, *, client: redis.Redis, default_ttl_ms: int, record_prefix: str = "gaveurs:jobs:job:"
    ) -> None:
        self.client = client
        self.default_ttl_ms = default_ttl_ms
        self.record_prefix = record_prefix
        self._release = client.register_script(lua("release"))
        self._claim = client.register_script(lua("unique_claim"))

    @property
    def actor_options(self) -> set[str]:
        return {"unique", "unique_ttl"}

    @staticmethod
    def key_of(message: dramatiq.Message[Any] | MessageProxy) -> str | None:
        unique_key = message.options.get("unique_key")
        return f"{KEY_PREFIX}{message.actor_name}:{unique_key}" if unique_key else None

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        key = self.key_of(message)
        if key is None:
            return
        ttl = broker.get_actor(message.actor_name).options.get("unique_ttl", self.default_ttl_ms)
        claim(
            self._claim,
            key,
            message,
            option="unique_key",
            ttl_ms=ttl,
            record_prefix=self.record_prefix,
        )

    def release(self, message: dramatiq.Message[Any] | MessageProxy) -> None:
        key = self.key_of(message)
        if key is not None:
            self._release(keys=[key], args=[message.message_id])

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        waiting_for_retry = (
            exception is not None and not message.failed and not isinstance(exception, Abort)
        )
        if not waiting_for_retry:
            self.release(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not is_duplicate(message):  # the attempt that owns the key may still be running
            self.release(message)
