"""Platform benchmark: enqueue rate, worker throughput and end-to-end latency of a no-op job,
through the full middleware stack (job records, uniqueness, retries, results, metrics) on a
real redis-server and a real worker process. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ops.bench.env import isolated, worker
from ops.bench.report import latency_ms


def run(*, jobs: int = 5000, latency_samples: int = 300, threads: int = 8) -> dict[str, Any]:
    server, tmp = isolated()
    from ops.bench.jobs import Noop, noop
    from runtime import State, records

    try:
        with worker(
            server.client,
            module="ops.bench.jobs:setup",
            queue="default",
            threads=threads,
            log_dir=tmp,
        ):
            store = records()

            # End-to-end latency: one job at a time, enqueue -> SUCCESS visible in its record.
            latencies = []
            for i in range(latency_samples):
                started = time.perf_counter()
                task_id = noop.send(Noop(n=i)).message_id
                while (record := store.get(task_id)) is None or record.state != State.SUCCESS:
                    time.sleep(0.0005)
                latencies.append((time.perf_counter() - started) * 1000)

            # Enqueue rate, then drain: the worker runs while we enqueue.
            started = time.perf_counter()
            ids = [noop.send(Noop(n=i)).message_id for i in range(jobs)]
            enqueue_s = time.perf_counter() - started
            while store.counts()[State.SUCCESS] < jobs + latency_samples:
                time.sleep(0.05)
            drain_s = time.perf_counter() - started
            assert store.get(ids[-1]) is not None
            info = server.client.info("memory")
            return {
                "benchmark": "platform",
                "jobs": jobs,
                "worker_threads": threads,
                "enqueue_per_second": round(jobs / enqueue_s, 1),
                "enqueue_ms_mean": round(enqueue_s / jobs * 1000, 3),
                "throughput_jobs_per_second": round(jobs / drain_s, 1),
                "e2e_latency_ms": latency_ms(latencies),
                "redis_used_memory_bytes_after": int(info["used_memory"]),
            }
    finally:
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
