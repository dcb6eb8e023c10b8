"""dramatiq-abort's Abortable, without its poll before every job.

Stock Abortable asks Redis, before each job starts, whether it was cancelled while queued: a
round trip per job. Here the job record answers that already (JobTracking skips a REVOKED job,
and Control.cancel marks the record before it signals), so only the registration that lets a
running job be interrupted remains.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq_abort import Abortable


class RunningAbortable(Abortable):
    def before_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any]
    ) -> None:
        if self.is_abortable(broker.get_actor(message.actor_name), message):
            self.manager.add_abortable(message.message_id)
