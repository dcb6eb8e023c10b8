"""Dramatiq's Prometheus middleware with canonical queue labels and a delayed gauge that balances.

Stock Dramatiq labels delayed messages with the `.DQ` queue name when they enter the delay queue
and with the canonical name when they run, so `dramatiq_delayed_messages_inprogress` climbs on one
series and goes negative on the other. Here every series uses the canonical queue name, and each
decrement only follows its own increment (skipped messages never incremented in-progress).
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.middleware.prometheus import Prometheus


def labels(message: dramatiq.Message[Any] | MessageProxy) -> tuple[str, str]:
    return q_name(message.queue_name), message.actor_name


class CanonicalPrometheus(Prometheus):
    """Worker metrics on `dramatiq_prom_port`; only meaningful in worker processes."""

    def __init__(self) -> None:
        super().__init__()
        self.in_progress: set[str] = set()

    def _booted(self) -> bool:
        # Producers (the API) never boot a worker process, so the metrics objects do not exist.
        return hasattr(self, "total_messages")

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted():
            self.total_rejected_messages.labels(*labels(message)).inc()

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        # Count a retry once, when it is scheduled, not again when it leaves the delay queue.
        if self._booted() and delay and "retries" in message.options:
            self.total_retried_messages.labels(*labels(message)).inc()

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted() and message.message_id not in self.delayed_messages:
            self.delayed_messages.add(message.message_id)
            self.inprogress_delayed_messages.labels(*labels(message)).inc()

    def before_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy
    ) -> None:
        if not self._booted():
            return
        if message.message_id in self.delayed_messages:
            self.delayed_messages.discard(message.message_id)
            self.inprogress_delayed_messages.labels(*labels(message)).dec()
        self.in_progress.add(message.message_id)
        self.inprogress_messages.labels(*labels(message)).inc()
        self.message_start_times[message.message_id] = current_millis()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not self._booted():
            return
        message_labels = labels(message)
        if message.message_id in self.delayed_messages:
            # Skipped straight out of the delay queue (e.g. cancelled): it is no longer delayed.
            self.delayed_messages.discard(message.message_id)
            self.inprogress_delayed_messages.labels(*message_labels).dec()
        started = self.message_start_times.pop(message.message_id, None)
        if message.message_id in self.in_progress:
            self.in_progress.discard(message.message_id)
            self.inprogress_messages.labels(*message_labels).dec()
        if started is not None:
            self.message_durations.labels(*message_labels).observe(current_millis() - started)
        self.total_messages.labels(*message_labels).inc()
        if exception is not None:
            self.total_errored_messages.labels(*message_labels).inc()

    after_skip_message = after_process_message
