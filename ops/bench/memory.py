"""Redis memory per queued job and per job record, ours vs plain Dramatiq.

Every figure is a difference of Redis `used_memory` (bytes the allocator handed out, not RSS)
divided by the number of jobs, from a flushed Redis after a warm-up fill, with no client but the
benchmark connected while it reads:

- plain queued: N counted no-ops enqueued by plain Dramatiq (message body + queue entry);
- ours queued: N enqueued by `Job.send` (message + PENDING job record + its index entries),
  split into message and record by Redis' own size of the queue's two keys (MEMORY USAGE);
- ours finished: the same N drained by a worker (SUCCESS record with its result, the Results
  middleware's stored result); the job records and their indexes are then deleted, which splits
  that into record and stored result.

    python -m ops.bench.memory [--jobs 20000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import redis

from ops.bench import counters, report
from ops.bench.env import isolated, worker
from ops.bench.produce import SIDES, produce

QUEUE_KEYS = ("dramatiq:default", "dramatiq:default.msgs")
RECORDS_MATCH = "gaveurs:jobs:*"
BACKLOG = 1_000_000


def per_job(before: int, after: int, jobs: int) -> float:
    return round((after - before) / jobs, 1)


def _fresh(client: redis.Redis) -> int:
    client.flushall()
    return report.used_memory(client)


def _delete_matching(client: redis.Redis, pattern: str) -> None:
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


def _record_shape(client: redis.Redis) -> dict[str, Any]:
    """How one record is stored: Redis keeps a small hash as a compact listpack, a hash with a
    long field value as a hashtable, which is several times larger."""
    key = next(client.scan_iter(match="gaveurs:jobs:job:*", count=1000))
    fields = client.hgetall(key)
    return {
        "encoding": client.object("encoding", key).decode(),
        "fields": len(fields),
        "longest_value_bytes": max(len(value) for value in fields.values()),
        "memory_usage_bytes": client.memory_usage(key, samples=0),
    }


def measure(client: redis.Redis, jobs: int, *, log_dir: Path) -> dict[str, Any]:
    # A first fill loads Dramatiq's Lua script and sizes Redis' own tables, which would
    # otherwise be charged to the side measured first.
    produce("plain", 100)
    base = _fresh(client)
    produce("plain", jobs)
    plain = per_job(base, report.used_memory(client), jobs)
    plain_keys = sum(int(client.memory_usage(key, samples=0) or 0) for key in QUEUE_KEYS)

    base = _fresh(client)
    produce("ours", jobs)
    queued = report.used_memory(client)
    # The queue's two keys as Redis sizes them (exact with SAMPLES 0): the rest is the record.
    messages = sum(int(client.memory_usage(key, samples=0) or 0) for key in QUEUE_KEYS)
    pending_shape = _record_shape(client)
    with worker(client, module=SIDES["ours"], queue="default", threads=8, log_dir=log_dir):
        deadline = time.monotonic() + 600
        while client.zcard("gaveurs:jobs:state:SUCCESS") < jobs:
            assert time.monotonic() < deadline, "the jobs did not all finish"
            time.sleep(0.05)
    client.delete(counters.COMPLETED)
    # The worker's heartbeat entries stay; they are a few hundred bytes, not per job.
    done = report.used_memory(client)
    success_shape = _record_shape(client)
    _delete_matching(client, RECORDS_MATCH)
    results_only = report.used_memory(client)
    return {
        "plain_queued_message": plain,
        "plain_queued_message_keys": round(plain_keys / jobs, 1),
        "ours_queued_job_total": per_job(base, queued, jobs),
        "ours_queued_message": round(messages / jobs, 1),
        "ours_pending_record": per_job(base + messages, queued, jobs),
        "ours_finished_job_total": per_job(base, done, jobs),
        "ours_success_record": per_job(results_only, done, jobs),
        "ours_stored_result": per_job(base, results_only, jobs),
        "pending_record_shape": pending_shape,
        "success_record_shape": success_shape,
    }


def run(*, jobs: int = 20_000) -> dict[str, Any]:
    load_before = report.load()
    server, tmp = isolated()
    try:
        figures = measure(server.client, jobs, log_dir=tmp)
    finally:
        server.stop()
    backlog_gib = figures["ours_queued_job_total"] * BACKLOG / 2**30
    return {
        "benchmark": "memory",
        "jobs": jobs,
        "method": "used_memory deltas / jobs from a flushed Redis (see the module's docstring)",
        "bytes_per_job": {k: v for k, v in figures.items() if not k.endswith("_shape")},
        # `_keys`: the queue keys' own size (MEMORY USAGE), comparable between the two sides.
        "record_shapes": {k: v for k, v in figures.items() if k.endswith("_shape")},
        "projected_1m_queued_gib": round(backlog_gib, 2),
        # Our own budget (the issue sets none): a 1,000,000-job backlog in a 2 GiB Redis.
        "targets": {"projected_1m_queued_gib": report.target(backlog_gib, at_most=2.0)},
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.memory", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    print(json.dumps(run(jobs=parser.parse_args().jobs), indent=2))


if __name__ == "__main__":
    main()
