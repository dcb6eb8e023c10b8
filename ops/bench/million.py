"""1,000,000 queued jobs fit and drain: counted no-ops through the full stack, all enqueued before
any worker runs, then drained by one `dramatiq` worker with 2 processes x 8 threads.

The fill runs from parallel producer processes, each through the real `Job.send` (one job at a
time: record and message, two round trips; no pipelining that would bypass the middleware).
Redis `used_memory` is sampled every second from the start of the fill to the end of the drain
(the finished jobs' records and stored results outlive the queue, so the peak may come late).
At the end every job must have run exactly once: the actors' counter, the SUCCESS records, an
empty queue and no dead letters.

    python -m ops.bench.million [--jobs 1000000 --producers 2 --processes 2 --threads 8]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from ops.bench import counters, report
from ops.bench.env import isolated, worker
from ops.bench.produce import SIDES, produce
from ops.bench.throughput import drain

MiB = 1024 * 1024


class MemorySampler:
    """The highest `used_memory` seen, read every `period_s` in a thread."""

    def __init__(self, client: Any, *, period_s: float = 1.0) -> None:
        self.client = client
        self.period_s = period_s
        self.peak = report.used_memory(client)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, report.used_memory(self.client))

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()


def counts(client: Any) -> dict[str, int]:
    return {
        "completed_counter": counters.completed(client),
        "success_records": int(client.zcard("gaveurs:jobs:state:SUCCESS")),
        "failure_records": int(client.zcard("gaveurs:jobs:state:FAILURE")),
        "pending_records": int(client.zcard("gaveurs:jobs:state:PENDING")),
        "ready_messages": int(client.llen("dramatiq:default")),
        "message_bodies": int(client.hlen("dramatiq:default.msgs")),
        "dead_letters": int(client.zcard("dramatiq:default.XQ")),
    }


def run(
    *, jobs: int = 1_000_000, producers: int = 2, processes: int = 2, threads: int = 8
) -> dict[str, Any]:
    load_before = report.load()
    server, tmp = isolated()
    client = server.client
    try:
        base = report.used_memory(client)
        with MemorySampler(client) as sampler:
            fill = produce("ours", jobs, producers=producers)
            queued = report.used_memory(client)
            after_fill = counts(client)
            with worker(
                client,
                module=SIDES["ours"],
                queue="default",
                processes=processes,
                threads=threads,
                log_dir=tmp,
                wait_live=False,
            ) as process:
                launched = time.perf_counter()
                figures = drain(
                    client,
                    jobs=jobs,
                    worker_pgid=process.pid,
                    redis_pid=server.process.pid,
                    timeout_s=4 * 3600,
                )
                from_launch_s = time.perf_counter() - launched
                # The last actor's INCR precedes its record's SUCCESS by a moment.
                deadline = time.monotonic() + 60
                while counts(client)["success_records"] < jobs and time.monotonic() < deadline:
                    time.sleep(0.1)
        final = counts(client)
        memory = client.info("memory")
    finally:
        server.stop()
    all_ran_once = (
        final["completed_counter"] == jobs
        and final["success_records"] == jobs
        and final["failure_records"] == final["pending_records"] == 0
        and final["ready_messages"] == final["message_bodies"] == final["dead_letters"] == 0
    )
    return {
        "benchmark": "million",
        "jobs": jobs,
        "fill": fill,
        "worker": {"processes": processes, "threads": threads},
        "counts_after_fill": after_fill,
        "counts_at_end": final,
        "redis_used_memory_mib": {
            "empty": round(base / MiB, 1),
            "all_queued": round(queued / MiB, 1),
            "peak_sampled": round(sampler.peak / MiB, 1),
            "peak_reported_by_redis": round(int(memory["used_memory_peak"]) / MiB, 1),
            "at_end": round(int(memory["used_memory"]) / MiB, 1),
        },
        "drain": {**figures, "seconds_from_worker_launch": round(from_launch_s, 1)},
        "targets": {
            "every_job_ran_exactly_once": {
                "value": all_ran_once,
                "target": "counter = SUCCESS records = jobs, queue and dead letters empty",
                "pass": all_ran_once,
            }
        },
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.million", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    result = run(
        jobs=args.jobs, producers=args.producers, processes=args.processes, threads=args.threads
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
