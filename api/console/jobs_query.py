"""The console's job list: one page of job records, newest first, read from the per-state
sorted sets (or the `all` set) from a position, so a page costs one ZREVRANGE and one pipeline
of HGETALLs whatever the number of records. Queue and job-name filters read further pages of the
same index, up to a bounded number of records per request."""

from __future__ import annotations

import json
from dataclasses import dataclass

from runtime import JobRecord, JobRecords, State

#: What a row of the list shows: read with HMGET, so a page never carries results, errors or
#: tracebacks (up to 64 KiB each) over the wire.
LIST_FIELDS = (
    "task_name", "queue", "state", "progress", "attempts", "worker",
    "enqueued_at", "started_at", "completed_at", "client",
)  # fmt: skip
#: Index entries read per round trip, and at most per request with a queue/name filter: a rare
#: name among 100,000 records answers "none in the last N, older ->" instead of scanning all.
CHUNK = 500
MAX_SCANNED = 1_000


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobRecord]
    #: Index position to continue from for older jobs; None when the index is exhausted.
    next_position: int | None
    scanned: int
    total_in_index: int


def _index(records: JobRecords, state: State | None) -> str:
    return f"{records.prefix}state:{state.value}" if state else f"{records.prefix}all"


def job_page(
    records: JobRecords,
    *,
    state: State | None = None,
    queue: str | None = None,
    name: str | None = None,
    args_text: str | None = None,
    client: str | None = None,
    position: int = 0,
    limit: int = 50,
) -> JobPage:
    index = _index(records, state)
    filtered = bool(queue or name or args_text or client)
    found: list[JobRecord] = []
    scanned = 0
    start = position
    exhausted = False
    while len(found) < limit and scanned < MAX_SCANNED:
        size = CHUNK if filtered else limit - len(found)
        ids = [m.decode() for m in records.client.zrevrange(index, start, start + size - 1)]
        if len(ids) < size:
            exhausted = True
        matching = _matching(records, ids, queue, name, args_text, client) if filtered else ids
        wanted = matching[: limit - len(found)]
        found.extend(row for row in _rows(records, wanted) if row is not None)
        if len(wanted) < len(matching):
            # The page filled inside this chunk: resume right after its last job.
            start += ids.index(wanted[-1]) + 1
            break
        start += len(ids)
        scanned += len(ids)
        if exhausted:
            break
    total = int(records.client.zcard(index))
    return JobPage(
        jobs=found,
        next_position=None if exhausted and start >= total else start,
        scanned=scanned,
        total_in_index=total,
    )


def _rows(records: JobRecords, ids: list[str]) -> list[JobRecord | None]:
    """The list's fields of each record, in one pipeline (None where a record has expired)."""
    pipe = records.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(records.key(task_id), LIST_FIELDS)
    rows: list[JobRecord | None] = []
    for task_id, values in zip(ids, pipe.execute(), strict=True):
        if values[0] is None:
            rows.append(None)
            continue
        raw = {field.encode(): v for field, v in zip(LIST_FIELDS, values, strict=True) if v}
        rows.append(JobRecord.from_hash(task_id, raw))
    return rows


def _matching(
    records: JobRecords,
    ids: list[str],
    queue: str | None,
    name: str | None,
    args_text: str | None,
    client: str | None = None,
) -> list[str]:
    """The ids whose record matches, reading only the compared fields (a scan of thousands of
    records must not build thousands of JobRecords)."""
    pipe = records.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(records.key(task_id), ("task_name", "queue", "args", "client"))
    wanted_queue = queue.encode() if queue else None
    wanted_name = name.encode() if name else None
    wanted_client = client.encode() if client else None
    needle = args_text.lower() if args_text else None
    matching = []
    for task_id, (task_name, record_queue, args, record_client) in zip(
        ids, pipe.execute(), strict=True
    ):
        if task_name is None:
            continue
        if wanted_queue and record_queue != wanted_queue:
            continue
        if wanted_name and task_name != wanted_name:
            continue
        if wanted_client and record_client != wanted_client:
            continue
        if needle and needle not in _args_text(args):
            continue
        matching.append(task_id)
    return matching


def _args_text(args: bytes | None) -> str:
    """Arguments as `name=value` text, what the search box matches (`lot_id=3472`)."""
    if not args:
        return ""
    parsed = json.loads(args)
    if not isinstance(parsed, dict):
        return str(parsed).lower()
    return " ".join(f"{k}={v}" for k, v in parsed.items()).lower()
