"""Result callbacks: a job sent with a `callback_url` option gets, at its final state, a delivery
job on the notifications queue (declared in actors/notifications.py as `deliver_callback`),
which POSTs the record, signed, with that queue's retries and dead letters.

Final means: succeeded, failed for good (retries exhausted or a permanent error), or revoked
(interrupted, or skipped because it was cancelled while queued). The delivery job is unique per
task id, so a second final event for the same job (a redelivery) does not enqueue it twice.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from dramatiq_abort import Abort

from runtime.middleware.job_records import is_duplicate
from runtime.middleware.uniqueness import DuplicateJob

logger = logging.getLogger("gaveurs.callbacks")
OPTION = "callback_url"
DELIVERY_ACTOR = "deliver_callback"


class FinalCallbacks(Middleware):
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or isinstance(exception, Abort) or message.failed:
            self._deliver(broker, message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not is_duplicate(message):
            self._deliver(broker, message)

    def _deliver(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        url = message.options.get(OPTION)
        if not url:
            return
        try:
            actor = broker.get_actor(DELIVERY_ACTOR)
        except dramatiq.errors.ActorNotFound:
            logger.error("%s has a callback_url but no %s job is declared", message, DELIVERY_ACTOR)
            return
        delivery = actor.message_with_options(
            kwargs={"task_id": message.message_id, "url": url},
            unique_key=message.message_id,
        )
        try:
            broker.enqueue(delivery)
        except DuplicateJob:
            pass  # already on its way
