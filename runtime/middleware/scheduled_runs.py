"""Per-entry lateness policy for scheduled runs, replacing periodiq's global 30 s drop.

periodiq's middleware skips any scheduled message that waited more than `skip_delay` in its
queue, silently. Here each schedule entry says how late its run may start (`late_after_ms` on
the message, None = always run: a backlog must not drop the nightly backup). A skipped run is
counted per entry (`gaveurs_schedule_skips_total`), shown as the entry's last outcome, and its
job record says why. Only the first delivery is judged: a retry is late by design. The wait is
measured on Redis's clock (the clock stamps `sent_at_ms`), so a worker whose clock runs ahead
does not take every run for late.
"""

from __future__ import annotations

import logging
import time

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage
from periodiq import PeriodiqMiddleware

from runtime.job_records import JobRecords, State, now_ms

logger = logging.getLogger("gaveurs.scheduler")

#: The clocks' shared state (scheduler/state.py reads and writes the rest of it); a skipped run
#: is counted here and shown as its entry's last outcome.
SCHEDULER_PREFIX = "gaveurs:scheduler:"
SKIPS_KEY = SCHEDULER_PREFIX + "skips"


def entry_key(name: str) -> str:
    return f"{SCHEDULER_PREFIX}entry:{name}"


def mark_skipped(client: redis.Redis, name: str, reason: str) -> int:
    """A late run was dropped: count it (metric) and say so in the entry's last run."""
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(SKIPS_KEY, name, 1)
    pipe.hset(entry_key(name), "outcome", f"skipped: {reason}")
    count, _ = pipe.execute()
    return int(count)


class ScheduledRuns(PeriodiqMiddleware):
    def __init__(self, *, client: redis.Redis, records: JobRecords) -> None:
        super().__init__(skip_delay=None)
        self.client = client
        self.records = records

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        options = message.options
        entry = options.get("schedule_entry")
        late_after_ms = options.get("late_after_ms")
        if not entry or late_after_ms is None or options.get("retries", 0):
            return
        sent_at_ms, redis_now = options.get("sent_at_ms"), getattr(broker, "now_ms", None)
        if sent_at_ms is not None and redis_now is not None:
            waited_ms = int(redis_now()) - int(sent_at_ms)  # both Redis time: skew cancels
        else:
            waited_ms = int(time.time() * 1000) - message.message_timestamp
        if waited_ms <= late_after_ms:
            return
        reason = (
            f"started {waited_ms / 1000:.0f} s after it was sent, limit {late_after_ms // 1000} s"
        )
        logger.warning("%s: skipping scheduled run %s: %s", entry, message.message_id, reason)
        try:
            mark_skipped(self.client, entry, reason)
            self.records.transition(
                message.message_id,
                State.REVOKED,
                epoch=-1,
                fields={"completed_at": now_ms(), "failure_reason": f"late: {reason}"},
            )
        except redis.RedisError:
            logger.exception("could not record the skip of %s", message.message_id)
        raise SkipMessage()
