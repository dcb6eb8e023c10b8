"""The console's job list: one page of job records, newest first, read from the per-state
sorted sets (or the `all` set) from a position, so a page costs one ZREVRANGE and one pipeline
of HGETALLs whatever the number of records. Queue and job-name filters read further pages of the
same index, up to a bounded number of records per request."""

from __future__ import annotations

from dataclasses import dataclass

from runtime import JobRecord, JobRecords, State

#: What a row of the list shows: read with HMGET, so a page never carries results, errors or
#: tracebacks (up to 64 KiB each) over the wire.
LIST_FIELDS = (
    "task_name", "queue", "state", "progress", "attempts", "worker",
    "enqueued_at", "started_at", "completed_at",
)  # fmt: skip
#: Index entries read per round trip, and at most per request with a queue/name filter: a rare
#: name among 100,000 records answers "none in the last N, older ->" instead of scanning all.
CHUNK = 200
MAX_SCANNED = 2_000


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
    position: int = 0,
    limit: int = 50,
) -> JobPage:
    index = _index(records, state)
    filtered = bool(queue or name or args_text)
    found: list[JobRecord] = []
    scanned = 0
    start = position
    exhausted = False
    while len(found) < limit and scanned < MAX_SCANNED:
        size = CHUNK if filtered else limit - len(found)
        ids = [m.decode() for m in records.client.zrevrange(index, start, start + size - 1)]
        if len(ids) < size:
            exhausted = True
        rows = _rows(records, ids, with_args=bool(args_text))
        for offset, record in enumerate(rows):
            if record is None or not _matches(record, queue, name, args_text):
                continue
            found.append(record)
            if len(found) == limit:
                # Resume right after the last job shown, not after the whole chunk.
                start += offset + 1
                break
        else:
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


def _rows(records: JobRecords, ids: list[str], *, with_args: bool) -> list[JobRecord | None]:
    """The list's fields of each record, in index order (None where a record has expired, so
    the resume position stays exact), in one pipeline."""
    fields = (*LIST_FIELDS, "args") if with_args else LIST_FIELDS
    pipe = records.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(records.key(task_id), fields)
    rows: list[JobRecord | None] = []
    for task_id, values in zip(ids, pipe.execute(), strict=True):
        if values[0] is None:
            rows.append(None)
            continue
        raw = {name.encode(): value for name, value in zip(fields, values, strict=True) if value}
        rows.append(JobRecord.from_hash(task_id, raw))
    return rows


def _matches(record: JobRecord, queue: str | None, name: str | None, args_text: str | None) -> bool:
    if queue and record.queue != queue:
        return False
    if name and record.task_name != name:
        return False
    if args_text:
        haystack = " ".join(f"{k}={v}" for k, v in record.args.items()).lower()
        return args_text.lower() in haystack
    return True
