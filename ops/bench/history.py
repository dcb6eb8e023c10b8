"""What the attempt timeline and the console's per-minute counters cost each job
(runtime/lua/history_fn.lua, run inside the transition script at each attempt's end).

The same jobs (PENDING, STARTED, then SUCCESS; every tenth one retried once first; arguments and
result of a PDF report) go through the
shipped transition script and through the same script with `attempt_history` emptied, on one
redis-server; the server process' CPU time (INFO cpu: user + sys, not wall time, so a loaded
machine's preemptions do not count) tells the difference per job, and INFO memory the bytes each
job's record and the counters add. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import argparse
import json
import uuid
from importlib import resources
from typing import Any

import redis

from ops.bench import report
from ops.local_redis import RedisServer
from runtime import JobRecords, State

BATCH = 200
#: A PDF report's arguments and result, as its record keeps them.
ARGS = json.dumps({"lot_id": 3472, "report_type": "complete"})
RESULT = json.dumps({"status": "success", "pdf_url": "/exports/lot_3472_complete.pdf"})
#: The counters of one hour: at most one hash per minute, whatever the traffic.
MINUTES_PER_HOUR = 60


def _source(*, with_history: bool) -> str:
    lua = resources.files("runtime").joinpath("lua")
    history = (
        lua.joinpath("history_fn.lua").read_text()
        if with_history
        else "local function attempt_history() end"
    )
    # No workflow here: advance_workflow stays nil, as for a record that names no workflow.
    others = [lua.joinpath(f"{name}.lua").read_text() for name in ("transition_fn", "transition")]
    return "\n".join([history, *others])


def _jobs(client: redis.Redis, script: Any, prefix: str, jobs_n: int) -> None:
    store = JobRecords(client, retention_s=3600, prefix=prefix)
    error = json.dumps({"type": "TransientError", "message": "SMS gateway timed out"})
    for start in range(0, jobs_n, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + BATCH, jobs_n)):
            task_id = uuid.uuid4().hex
            keys = [store.key(task_id), prefix]
            created: dict[str, Any] = {"task_id": task_id, "queue": "exports", "args": ARGS}
            calls: list[tuple[State, int, str, dict[str, Any]]] = [
                (State.PENDING, 0, "create", created)
            ]
            if i % 10 == 0:
                calls += [
                    (State.STARTED, 0, "any", {"started_at": 1, "delivery": "a"}),
                    (State.RETRY, 1, "any", {"error": error, "eta": 2}),
                ]
            calls += [
                (State.STARTED, 1, "any", {"started_at": 3, "delivery": "b"}),
                (State.SUCCESS, 1, "any", {"completed_at": 4, "result": RESULT}),
            ]
            for state, epoch, mode, fields in calls:
                argv = store.arguments(task_id, state, epoch=epoch, mode=mode, fields=fields)
                script(keys=keys, args=argv, client=pipe)
        pipe.execute()


def _cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _measure(server: RedisServer, *, with_history: bool, jobs_n: int) -> dict[str, float]:
    client = server.client
    client.flushall()
    script = client.register_script(_source(with_history=with_history))
    script(keys=["warm", "warm:"], args=["w", "PENDING", 0, 0, 0, 60, "create", 1000])
    memory_before, cpu_before = report.used_memory(client), _cpu_s(client)
    _jobs(client, script, f"bench:{int(with_history)}:", jobs_n)
    return {
        "redis_cpu_us_per_job": round((_cpu_s(client) - cpu_before) * 1e6 / jobs_n, 2),
        "bytes_per_job": round((report.used_memory(client) - memory_before) / jobs_n, 1),
    }


def run(*, jobs_n: int = 20_000, rounds: int = 3) -> dict[str, Any]:
    load_before = report.load()
    server = RedisServer()
    try:
        rounds_out = []
        for _ in range(rounds):
            without = _measure(server, with_history=False, jobs_n=jobs_n)
            with_ = _measure(server, with_history=True, jobs_n=jobs_n)
            rounds_out.append((without, with_))
        client = server.client
        minute = next(iter(client.scan_iter("bench:1:minute:*")), None)
        minute_bytes = int(client.memory_usage(minute) or 0) if minute else 0
    finally:
        server.stop()
    extra_us = sorted(w["redis_cpu_us_per_job"] - o["redis_cpu_us_per_job"] for o, w in rounds_out)
    extra_bytes = sorted(w["bytes_per_job"] - o["bytes_per_job"] for o, w in rounds_out)
    median_us, median_bytes = extra_us[len(extra_us) // 2], extra_bytes[len(extra_bytes) // 2]
    return {
        "benchmark": "history",
        "jobs": jobs_n,
        "rounds": rounds,
        "without_history": rounds_out[-1][0],
        "with_history": rounds_out[-1][1],
        "extra_redis_cpu_us_per_job_median": round(median_us, 2),
        "extra_bytes_per_job_record_median": round(median_bytes, 1),
        "minute_counter_hash_bytes": minute_bytes,
        "counters_bytes_per_hour_at_most": minute_bytes * MINUTES_PER_HOUR,
        "targets": {
            # A job costs Redis tens of µs of script time already; the timeline may add a few.
            "extra_redis_cpu_us_per_job": report.target(median_us, at_most=25),
        },
        "load": {"before": load_before, "after": report.load()},
        "note": "every tenth job retried once; Redis CPU from INFO cpu (whole server, same "
        "network work on both sides), median of the rounds",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.history", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(jobs_n=args.jobs, rounds=args.rounds)))


if __name__ == "__main__":
    main()
