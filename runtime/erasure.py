"""Erasure in Redis: job records and dead letters that carry a person's data (domain/gdpr.py
does the database and the files).

Job records hold masked arguments, but results, progress notes and errors may still carry a
name or an address: each field that does has the trace replaced by "[effacé]". A dead letter's
body is the message as sent, payload in clear: a dead letter that carries a trace is deleted
(it could not be re-driven without the data anyway). Queued messages are not touched: the
erasure refuses to run while a job about the person is queued or running (domain.gdpr.busy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from runtime.consumer import RobustRedisBroker
from runtime.job_records import JobRecords
from runtime.queues import QUEUES

ERASED = "[effacé]"
SCAN_COUNT = 500


def scrub_redis(
    broker: RobustRedisBroker, records: JobRecords, traces: Sequence[str]
) -> dict[str, int]:
    """Remove the traces from job records and delete dead letters carrying them."""
    counts = {"job_records": 0, "dead_letters": 0}
    if not traces:
        return counts
    client = broker.client
    pattern = re.compile("|".join(re.escape(t) for t in traces), re.IGNORECASE)
    for key in client.scan_iter(match=f"{records.prefix}job:*", count=SCAN_COUNT):
        fields = client.hgetall(key)
        changed = {
            name: pattern.sub(ERASED, value.decode("utf-8", "replace"))
            for name, value in fields.items()
            if pattern.search(value.decode("utf-8", "replace"))
        }
        if changed:
            client.hset(key, mapping=changed)
            counts["job_records"] += 1
    for queue in QUEUES:
        xq = f"{broker.namespace}:{queue}.XQ"
        for member, body in client.hscan_iter(f"{xq}.msgs", count=SCAN_COUNT):
            if pattern.search(body.decode("utf-8", "replace")):
                pipe = client.pipeline(transaction=True)
                pipe.zrem(xq, member)
                pipe.hdel(f"{xq}.msgs", member)
                pipe.execute()
                counts["dead_letters"] += 1
    return counts
