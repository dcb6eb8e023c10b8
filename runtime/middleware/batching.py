"""Batched jobs: items requested within a window go out as one run of the job, which gets them
all in one payload field (one provider call for many notifications, where the provider allows).

    @job(queue="notifications", payload=EmailBatch,
         batch=Batch(field="emails", window_ms=1_000, max_items=100))
    def send_email_batch(payload: EmailBatch) -> dict: ...

    send_email_batch.add(SendEmail(...))   # Submitted: the task id of the run that sends it

`Job.add` runs lua/batch_add.lua: the item joins the job's pending run (its record still
PENDING, fewer than `max_items`) or opens a new run, enqueued with a delay of the window. When
the run starts, after its record says STARTED, this middleware reads the items into the payload
field; it deletes them when the run succeeds, so a retry sends the same items again (each
carries its idempotency key: nothing goes out twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from domain.platform.settings import Settings
from runtime.middleware.job_records import is_duplicate
from runtime.middleware.uniqueness import CLAIM_GRACE_MS
from runtime.scripts import lua

KEY_PREFIX = "gaveurs:batch:"
ITEMS_PREFIX = "gaveurs:batch:items:"
#: Past the window, how long the pending run's key may live (a worker busy when it is due).
KEY_MARGIN_MS = 3_600_000
#: Items wait for their run's success this long at most (its retries included).
ITEMS_TTL_MS = 7 * 86_400_000
#: The message option naming the payload field the items go to.
OPTION = "batch_field"


@dataclass(frozen=True)
class Batch:
    """A batched job: the payload `field` (a list) that receives the items, the `window_ms`
    (or a function of the settings giving it) during which items join one run, and at most
    `max_items` per run."""

    field: str
    window_ms: int | Callable[[Settings], int]
    max_items: int = 100

    def window(self, settings: Settings) -> int:
        return self.window_ms if isinstance(self.window_ms, int) else self.window_ms(settings)


class Batching(Middleware):
    """Adds items to pending runs, and hands a starting run its items. Place after JobTracking."""

    def __init__(self, *, client: redis.Redis, record_prefix: str) -> None:
        self.client = client
        self.record_prefix = record_prefix
        self._add = client.register_script(lua("batch_add"))

    def add(
        self, actor_name: str, *, task_id: str, item: Any, window_ms: int, max_items: int
    ) -> tuple[str, bool]:
        """(task id of the run that takes the item, whether that run is new)."""
        holder, new = self._add(
            keys=[f"{KEY_PREFIX}{actor_name}"],
            args=[
                task_id, window_ms + KEY_MARGIN_MS, self.record_prefix, CLAIM_GRACE_MS,
                ITEMS_PREFIX, ITEMS_TTL_MS, max_items, json.dumps(item, default=str),
            ],
        )  # fmt: skip
        return holder.decode(), bool(new)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        field = message.options.get(OPTION)
        if not field or is_duplicate(message):
            return
        items = self.client.lrange(ITEMS_PREFIX + message.message_id, 0, -1)
        # A run sent directly with items (the generic jobs route) keeps them, ahead of these.
        given = list(message.kwargs.get(field) or [])
        message.kwargs[field] = given + [json.loads(item) for item in items]

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None and message.options.get(OPTION) and not is_duplicate(message):
            self.client.delete(ITEMS_PREFIX + message.message_id)
