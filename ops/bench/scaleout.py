"""Scale-out on worker hosts (network namespaces, ops/netns.py), Redis on this machine.

1. I/O-bound jobs (each waits `--io-ms`, as a call to a slow service would) on 1, 2, 4 hosts,
   one worker process of `--threads` threads per host: jobs/s, and the efficiency against
   linear (jobs/s at n hosts / (n x jobs/s at 1 host)). The workers start first and are held
   (SIGSTOP) while the jobs are sent, then released together; the rate is taken between the
   10th and the 90th percent of completions.
2. No-op jobs through one worker host at 0, 1 and 10 ms of round-trip time to Redis (0: its
   veth pair, direct; otherwise through the delay proxy), ours beside plain Dramatiq in the same
   run (pre-filled queue, first to last completion, as ops/bench/throughput.py). Past a few ms,
   round trips per job bound throughput more than CPU does. The RTT a client on the host
   actually sees (PING through the same path) is reported beside the one asked for. Redis CPU
   per job (enqueue, then fetch to ack) gives the ceiling of one Redis: it runs commands on
   one thread, so 1 s / (CPU per job) is the most jobs/s it can carry for that side.

    python -m ops.bench.scaleout [--hosts 1 2 4 --io-jobs-per-host 400 --rtts 0 1 10]

Needs root (namespaces and veth pairs); without it the JSON says why and measures nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from ops import netns
from ops.bench import counters, report
from ops.bench.env import isolated, process_cpu_s, worker
from ops.bench.produce import SIDES, produce
from ops.bench.throughput import drain
from runtime import live_workers

TARGET_EFFICIENCY = 0.8
POLL_S = 0.01


def steady_rate(client: redis.Redis, *, jobs: int, timeout_s: float) -> dict[str, Any]:
    """Jobs/s from the first count seen past 10 % of the jobs to the first past 90 %: start-up
    and tail stay out. Counts as observed, not the marks: a poll late on a loaded machine must
    not shorten the window."""
    low, high = jobs // 10, jobs - jobs // 10
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int] | None = None
    while True:
        done = counters.completed(client)
        now = time.perf_counter()
        if first is None and done >= low:
            first = (now, done)
        elif first is not None and done >= high:
            last = (now, done)
            break
        assert time.monotonic() < deadline, f"only {done} of {jobs} jobs completed"
        time.sleep(POLL_S)
    while (done := counters.completed(client)) < jobs:
        assert time.monotonic() < deadline, f"only {done} of {jobs} jobs completed"
        time.sleep(POLL_S)
    elapsed = last[0] - first[0]
    rate = (last[1] - first[1]) / elapsed
    return {"jobs": jobs, "window_seconds": round(elapsed, 3), "jobs_per_second": rate}


def _send_waiting(count: int, ms: int) -> None:
    from ops.bench import jobs

    for n in range(count):
        jobs.io_bound.send(jobs.Waiting(ms=ms, n=n))


def io_run(
    client: redis.Redis,
    hosts: Sequence[netns.Host],
    *,
    redis_port: int,
    jobs_per_host: int,
    ms: int,
    threads: int,
    log_dir: Path,
) -> dict[str, Any]:
    client.flushall()
    jobs = jobs_per_host * len(hosts)
    with ExitStack() as started:
        processes = [
            started.enter_context(
                worker(
                    client,
                    module=SIDES["ours"],
                    queue="default",
                    threads=threads,
                    log_dir=log_dir,
                    env={"REDIS_URL": f"redis://{host.gateway}:{redis_port}/0"},
                    prefix=host.run,
                    name=f"io-{len(hosts)}-{index}",
                    wait_live=False,  # all start at once; then wait for them together
                )
            )
            for index, host in enumerate(hosts)
        ]
        deadline = time.monotonic() + 120
        while len(live_workers(client)) < len(hosts):
            assert time.monotonic() < deadline, f"workers did not start; see {log_dir}"
            time.sleep(0.1)
        # Held (SIGSTOP) while the jobs are sent, so every host starts on a full queue at once:
        # neither the fill's pace nor one host's late start is measured.
        for process in processes:
            os.killpg(process.pid, signal.SIGSTOP)
        try:
            _send_waiting(jobs, ms)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGCONT)
        figures = steady_rate(client, jobs=jobs, timeout_s=600)
    assert counters.completed(client) == jobs, "a job ran twice or not at all"
    return {"hosts": len(hosts), **figures}


def noop_level(
    client: redis.Redis,
    host: netns.Host,
    *,
    redis_port: int,
    redis_pid: int,
    rtt_ms: float,
    jobs: int,
    threads: int,
    order: Sequence[str],
    log_dir: Path,
) -> dict[str, Any]:
    level: dict[str, Any] = {"rtt_ms": rtt_ms}
    with netns.path_to_redis(host, redis_port, rtt_ms) as url:
        level["measured_rtt_ms"] = netns.measured_rtt_ms(host, url)
        for side in order:
            client.flushall()
            redis_cpu = process_cpu_s(redis_pid)
            produce(side, jobs)
            enqueue_us = (process_cpu_s(redis_pid) - redis_cpu) / jobs * 1e6
            with worker(
                client,
                module=SIDES[side],
                queue="default",
                threads=threads,
                log_dir=log_dir,
                env={"REDIS_URL": url},
                prefix=host.run,
                wait_live=False,
                name=f"noop-{side}-{rtt_ms:g}",
            ) as process:
                level[side] = drain(
                    client, jobs=jobs, worker_pgid=process.pid, redis_pid=redis_pid, timeout_s=600
                )
            assert counters.completed(client) == jobs, f"{side}: a job ran twice or not at all"
            level[side]["redis_cpu_us_per_enqueue"] = round(enqueue_us)
            # Redis runs commands on one thread: its CPU per job bounds what one Redis carries.
            per_job_us = enqueue_us + level[side]["redis_cpu_us_per_msg"]
            level[side]["redis_ceiling_jobs_per_second"] = round(1e6 / max(per_job_us, 1))
    level["ratio_ours_to_plain"] = round(
        level["ours"]["msgs_per_second"] / level["plain"]["msgs_per_second"], 3
    )
    return level


def run(
    *,
    hosts: Sequence[int] = (1, 2, 4),
    io_jobs_per_host: int = 400,
    io_ms: int = 50,
    threads: int = 4,
    rtts: Sequence[float] = (0, 1, 10),
    noop_jobs: int = 600,
    noop_threads: int = 8,
) -> dict[str, Any]:
    load_before = report.load()
    most = max(hosts)
    efficiency_key = f"io_efficiency_at_{most}_hosts"
    result: dict[str, Any] = {"benchmark": "scaleout"}
    why = netns.reason()
    if why:
        return {
            **result,
            "skipped": f"worker hosts cannot be made here: {why}",
            "targets": {efficiency_key: report.target(None, at_least=TARGET_EFFICIENCY)},
            "load": {"before": load_before, "after": report.load()},
        }
    with netns.hosts(most) as made:
        server, tmp = isolated(bind=("127.0.0.1", *(host.gateway for host in made)))
        try:
            io_runs = [
                io_run(
                    server.client,
                    made[:count],
                    redis_port=server.port,
                    jobs_per_host=io_jobs_per_host,
                    ms=io_ms,
                    threads=threads,
                    log_dir=tmp,
                )
                for count in hosts
            ]
            levels = [
                noop_level(
                    server.client,
                    made[0],
                    redis_port=server.port,
                    redis_pid=server.process.pid,
                    rtt_ms=rtt,
                    jobs=noop_jobs,
                    threads=noop_threads,
                    order=("plain", "ours") if index % 2 == 0 else ("ours", "plain"),
                    log_dir=tmp,
                )
                for index, rtt in enumerate(rtts)
            ]
        finally:
            server.stop()
    single = next((r["jobs_per_second"] for r in io_runs if r["hosts"] == 1), None)
    for io in io_runs:
        linear = io["hosts"] * single if single else None
        io["efficiency"] = round(io["jobs_per_second"] / linear, 3) if linear else None
        io["jobs_per_second"] = round(io["jobs_per_second"], 1)
    efficiency = next(r["efficiency"] for r in io_runs if r["hosts"] == most)
    return {
        **result,
        "topology": (
            "Redis on this machine; each worker host a network namespace on its own veth pair; "
            "one worker process per host"
        ),
        "io_bound": {
            "job_waits_ms": io_ms,
            "threads_per_host": threads,
            "ideal_jobs_per_second_per_host": round(threads * 1000 / io_ms, 1),
            "method": "workers up and held, jobs sent, workers released; 10 % to 90 % completed",
            "runs": io_runs,
        },
        "noop_by_rtt": {
            "jobs": noop_jobs,
            "threads": noop_threads,
            "method": "pre-filled queue, first to last completion; 0 ms is the veth pair, "
            "otherwise the delay proxy",
            "levels": levels,
        },
        "ratio_median_ours_to_plain": statistics.median(
            level["ratio_ours_to_plain"] for level in levels
        ),
        "targets": {efficiency_key: report.target(efficiency, at_least=TARGET_EFFICIENCY)},
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.scaleout", description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--io-jobs-per-host", type=int, default=400)
    parser.add_argument("--io-ms", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rtts", type=float, nargs="+", default=[0, 1, 10])
    parser.add_argument("--noop-jobs", type=int, default=600)
    parser.add_argument("--noop-threads", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(run(**vars(args)), indent=2))  # the options are run's keywords


if __name__ == "__main__":
    main()
