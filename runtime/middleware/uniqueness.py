"""Unique jobs: while a job with the same key is queued or running, sending another returns it.

The key (`unique_key` message option, set by `Job.send` from the actor's `unique` template) maps
to the owning task id in Redis. It is released when the job ends (success, failure, cancel) and
kept while it waits for a retry. A key whose holder has ended (its record says so) is free even
before its release runs; a TTL bounds how long a lost job can block its key.
"""

from __future__ import annotations

from typing import Any, ClassVar

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


class KeyClaim(Middleware):
    """Claims, at enqueue, a key named by a message option (lua/unique_claim.lua, in `mode`),
    or raises DuplicateJob naming the job that holds it. A retry or a delayed-queue move
    re-enqueues the same message: it already owns the key."""

    #: The message option naming the key, and the key's Redis prefix.
    option: ClassVar[str]
    key_prefix: ClassVar[str]
    #: unique_claim.lua's mode ("" holds the key until released).
    mode: ClassVar[str] = ""

    def __init__(self, *, client: redis.Redis, record_prefix: str) -> None:
        self.client = client
        self.record_prefix = record_prefix
        self._claim = client.register_script(lua("unique_claim"))

    @classmethod
    def key_of(cls, message: dramatiq.Message[Any] | MessageProxy) -> str | None:
        value = message.options.get(cls.option)
        return f"{cls.key_prefix}{message.actor_name}:{value}" if value else None

    def ttl_ms(self, actor_options: dict[str, Any]) -> int:
        """How long the key may live, from the actor's options."""
        raise NotImplementedError

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        key = self.key_of(message)
        if key is None:
            return
        ttl = self.ttl_ms(broker.get_actor(message.actor_name).options)
        owner = self._claim(
            keys=[key],
            args=[message.message_id, ttl, self.record_prefix, CLAIM_GRACE_MS, self.mode],
        ).decode()
        if owner != message.message_id:
            raise DuplicateJob(message.options[self.option], owner)


class Uniqueness(KeyClaim):
    """Claims the key at enqueue, releases it when the job is over."""

    option, key_prefix = "unique_key", KEY_PREFIX

    def __init__(
        self, *, client: redis.Redis, default_ttl_ms: int, record_prefix: str = "gaveurs:jobs:job:"
    ) -> None:
        super().__init__(client=client, record_prefix=record_prefix)
        self.default_ttl_ms = default_ttl_ms
        self._release = client.register_script(lua("release"))
        self._abandon = client.register_script(lua("unique_abandon"))

    @property
    def actor_options(self) -> set[str]:
        return {"unique", "unique_ttl"}

    def ttl_ms(self, actor_options: dict[str, Any]) -> int:
        return int(actor_options.get("unique_ttl", self.default_ttl_ms))

    def abandon(self, message: dramatiq.Message[Any]) -> None:
        """The enqueue of `message` failed: free its key unless its record exists after all."""
        key = self.key_of(message)
        if key is not None:
            self._abandon(
                keys=[key, f"{self.record_prefix}{message.message_id}"], args=[message.message_id]
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
