"""Worker throughput, ours vs plain Dramatiq: how fast one worker drains a pre-filled queue.

For each run the queue is filled first (`ops.bench.produce`, the side's real enqueue path), then
a worker starts, and the rate is measured from the first completion to the last: the worker's
start-up and the fill are outside the window. Both sides' actors do the same work (one Redis
INCR, return a small dict), so the counter the benchmark polls costs each side the same. Sides
alternate in ABBA order (plain, ours, ours, plain, ...) on the same Redis, flushed between runs,
with the same processes and threads; the median of each side is compared.

    python -m ops.bench.throughput [--jobs 20000 --rounds 2 --processes 1 --threads 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import redis

from ops.bench import counters, report
from ops.bench.env import group_cpu_s, isolated, process_cpu_s, worker
from ops.bench.produce import SIDES, produce

TARGET_RATIO = 0.7
#: The sides whose workers are Dramatiq's (they write Dramatiq's heartbeats).
DRAMATIQ_SIDES = ("plain", "ours")
POLL_S = 0.005


def drain(
    client: redis.Redis,
    *,
    jobs: int,
    worker_pgid: int,
    redis_pid: int,
    timeout_s: float,
    more_pgids: Sequence[int] = (),
    processes: int = 1,
    producers: frozenset[bytes] = frozenset(),
) -> dict[str, Any]:
    """Rate from the first completion seen once every worker process consumes (or half the jobs
    are done) to the last, and CPU spent per job in that window (by the process groups
    `worker_pgid` and `more_pgids`, and by Redis). With several processes, the first completes
    jobs while the others still import their code: their start-up would count in the window,
    the more so the heavier the side's imports. `processes=0`: from the first completion (a side
    that does not write Dramatiq's heartbeats)."""
    groups = (worker_pgid, *more_pgids)
    deadline = time.monotonic() + timeout_s
    while counters.completed(client) == 0 or (
        len(consuming(client) - producers) < processes and counters.completed(client) < jobs // 2
    ):
        assert time.monotonic() < deadline, "no job completed"
        time.sleep(POLL_S / 5)
    started, first = time.perf_counter(), counters.completed(client)
    worker_cpu, redis_cpu = sum(map(group_cpu_s, groups)), process_cpu_s(redis_pid)
    while (done := counters.completed(client)) < jobs:
        assert time.monotonic() < deadline, f"only {done} of {jobs} jobs completed"
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    measured = done - first
    return {
        "drain_seconds": round(elapsed, 3),
        "msgs_per_second": round(measured / elapsed, 1),
        "worker_cpu_us_per_msg": round(
            (sum(map(group_cpu_s, groups)) - worker_cpu) / measured * 1e6
        ),
        "redis_cpu_us_per_msg": round((process_cpu_s(redis_pid) - redis_cpu) / measured * 1e6),
    }


def consuming(client: redis.Redis) -> set[bytes]:
    """Ids of the brokers in Dramatiq's heartbeats (every process that fetched; producers too,
    on plain Dramatiq, whose enqueue stamps them as well)."""
    return set(client.zrange("dramatiq:__heartbeats__", 0, -1))


@contextmanager
def dramatiq_workers(
    client: redis.Redis,
    side: str,
    *,
    processes: int,
    threads: int,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> Iterator[list[int]]:
    """A Dramatiq side's worker (`dramatiq MODULE`), started; yields its process group."""
    with worker(
        client,
        module=SIDES[side],
        queue="default",
        processes=processes,
        threads=threads,
        log_dir=log_dir,
        wait_live=False,
        name=f"worker-{side}",
        env=env,
        prefix=prefix,
    ) as process:
        yield [process.pid]


#: Starts a side's workers: `(client, side, *, processes, threads, log_dir)`, yields the process
#: groups whose CPU time counts (the first is the main one).
Workers = Callable[..., AbstractContextManager[list[int]]]


def one_run(
    client: redis.Redis,
    *,
    side: str,
    jobs: int,
    processes: int,
    threads: int,
    redis_pid: int,
    log_dir: Path,
    workers: Workers = dramatiq_workers,
    queue_key: str = "dramatiq:default",
) -> dict[str, Any]:
    """One drain: flush, fill through the side's own enqueue (`celery_threads` fills as
    `celery`), start its workers, measure (`drain`), check each job ran exactly once."""
    client.flushall()
    fill = produce(side.partition("_")[0], jobs)
    assert client.llen(queue_key) == jobs, f"the {side} queue was not filled"
    producers = frozenset(consuming(client))
    with workers(client, side, processes=processes, threads=threads, log_dir=log_dir) as groups:
        figures = drain(
            client,
            jobs=jobs,
            worker_pgid=groups[0],
            redis_pid=redis_pid,
            timeout_s=900,
            more_pgids=groups[1:],
            # Dramatiq's sides: once every process consumes; the peers write no heartbeats.
            processes=processes if side in DRAMATIQ_SIDES else 0,
            producers=producers,
        )
    # Exactly once each: no job lost, none run twice.
    assert counters.completed(client) == jobs, (side, counters.completed(client))
    if side == "ours":
        succeeded = client.zcard("gaveurs:jobs:state:SUCCESS")
        assert succeeded == jobs, f"{succeeded} SUCCESS records for {jobs} jobs"
    return {"side": side, **figures, "fill_per_second": fill["enqueue_per_second"]}


def summarize(runs: list[dict[str, Any]], side: str) -> dict[str, Any]:
    mine = [run for run in runs if run["side"] == side]
    rates = [run["msgs_per_second"] for run in mine]
    return {
        "msgs_per_second_median": round(statistics.median(rates), 1),
        "msgs_per_second_spread": [min(rates), max(rates)],
        "msgs_per_second_runs": rates,
        "worker_cpu_us_per_msg_median": statistics.median(r["worker_cpu_us_per_msg"] for r in mine),
        "redis_cpu_us_per_msg_median": statistics.median(r["redis_cpu_us_per_msg"] for r in mine),
    }


def run(
    *, jobs: int = 20_000, rounds: int = 2, processes: int = 1, threads: int = 8
) -> dict[str, Any]:
    load_before = report.load()
    server, tmp = isolated()
    try:
        runs = []
        for index in range(rounds):
            order = ("plain", "ours") if index % 2 == 0 else ("ours", "plain")
            for side in order:
                runs.append(
                    one_run(
                        server.client,
                        side=side,
                        jobs=jobs,
                        processes=processes,
                        threads=threads,
                        redis_pid=server.process.pid,
                        log_dir=tmp,
                    )
                )
    finally:
        server.stop()
    plain, ours = summarize(runs, "plain"), summarize(runs, "ours")
    ratio = round(ours["msgs_per_second_median"] / plain["msgs_per_second_median"], 3)
    return {
        "benchmark": "throughput",
        "jobs": jobs,
        "rounds": rounds,
        "worker": {"processes": processes, "threads": threads},
        "method": (
            "pre-filled queue, from the first completion once every worker process consumes to "
            "the last, ABBA order, median per side"
        ),
        "plain": plain,
        "ours": ours,
        "ratio_ours_to_plain": ratio,
        "runs": runs,
        "targets": {"ratio_ours_to_plain": report.target(ratio, at_least=TARGET_RATIO)},
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.throughput", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    result = run(jobs=args.jobs, rounds=args.rounds, processes=args.processes, threads=args.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
