"""Dramatiq's Results middleware, minus one overwrite: a duplicate delivery that JobTracking
skips would store None over the result its first run stored (groups and pipelines read it)."""

from __future__ import annotations

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.results import Results

from actors.middleware.job_records import is_duplicate


class KeptResults(Results):
    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not is_duplicate(message):
            super().after_skip_message(broker, message)
