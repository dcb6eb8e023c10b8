"""Worker throughput beside the peers users would otherwise pick: plain Dramatiq, ours, Celery 5
(threads pool and prefork) and RQ drain the same counted no-op (ops/bench/counters.py) from a
pre-filled queue on the same Redis, with the same processes x threads.

Each side runs the simplest code its users would write (ops/bench/plain_jobs.py, jobs.py,
celery_jobs.py, rq_jobs.py) under its own stock worker command:

- plain, ours: `dramatiq MODULE --processes P --threads T`;
- celery_threads: P x `celery worker --pool threads --concurrency T`;
- celery_prefork: `celery worker --pool prefork --concurrency P*T` (one child per slot);
- rq: `rq worker-pool --num-workers P*T` (RQ has no threads; its default worker forks a work
  horse per job, which is how RQ isolates jobs: it drains `--rq-jobs` only, at most `--jobs`, or
  a run would take many minutes);
- rq_simple: the same pool of RQ's `SimpleWorker` (no fork per job), RQ at its fastest.

The queue is filled first through the side's own enqueue (RQ's `enqueue_many`), the worker
starts, and the rate is measured from the first completion to the last, as in throughput.py.
Sides alternate: each round runs them in the reverse order of the round before, on a flushed
Redis; the median of each side and its spread (min, max) are reported.

    python -m ops.bench.peers [--jobs 10000 --rounds 5 --processes 1 --threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis

from ops.bench import report
from ops.bench.env import isolated, spawned
from ops.bench.throughput import DRAMATIQ_SIDES, dramatiq_workers, one_run, summarize

PEERS = ("plain", "ours", "celery_threads", "celery_prefork", "rq", "rq_simple")
#: The Redis list each side's worker consumes (flushed between runs).
QUEUE_KEYS = {
    "plain": "dramatiq:default",
    "ours": "dramatiq:default",
    "celery_threads": "celery",
    "celery_prefork": "celery",
    "rq": "rq:queue:default",
    "rq_simple": "rq:queue:default",
}
TARGET_RATIO_TO_CELERY_THREADS = 2.5
#: Jobs the forking RQ side drains (some tens a second here: a full --jobs would take minutes).
RQ_FORKING_JOBS = 1000


def celery_command(
    pool: str, concurrency: int, index: int, *, app: str = "ops.bench.celery_jobs"
) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING",
        "--hostname", f"peers{index}@%h",
    ]  # fmt: skip


def _commands(side: str, *, processes: int, threads: int) -> list[list[str]]:
    if side == "celery_threads":
        return [celery_command("threads", threads, index) for index in range(processes)]
    if side == "celery_prefork":
        return [celery_command("prefork", processes * threads, 0)]
    assert side in ("rq", "rq_simple"), side
    simple = ["--worker-class", "rq.worker.SimpleWorker"] if side == "rq_simple" else []
    return [
        [
            sys.executable, "-m", "rq.cli", "worker-pool", "--url", os.environ["REDIS_URL"],
            "--num-workers", str(processes * threads), "--logging-level", "WARNING", *simple,
            "default",
        ]
    ]  # fmt: skip


@contextmanager
def side_workers(
    client: redis.Redis, side: str, *, processes: int, threads: int, log_dir: Path
) -> Iterator[list[int]]:
    """The side's workers, started; yields their process groups (for their CPU time)."""
    if side in DRAMATIQ_SIDES:
        with dramatiq_workers(
            client, side, processes=processes, threads=threads, log_dir=log_dir
        ) as groups:
            yield groups
        return
    with ExitStack() as stack:
        groups = [
            stack.enter_context(spawned(command, log_dir=log_dir, name=f"worker-{side}-{n}")).pid
            for n, command in enumerate(_commands(side, processes=processes, threads=threads))
        ]
        yield groups


def run(
    *,
    jobs: int = 10_000,
    rounds: int = 5,
    processes: int = 1,
    threads: int = 8,
    sides: tuple[str, ...] = PEERS,
    rq_jobs: int = RQ_FORKING_JOBS,
) -> dict[str, Any]:
    jobs_by_side = {side: min(jobs, rq_jobs) if side == "rq" else jobs for side in sides}
    load_before = report.load()
    server, tmp = isolated()
    try:
        runs = []
        for index in range(rounds):
            for side in sides if index % 2 == 0 else tuple(reversed(sides)):
                runs.append(
                    one_run(
                        server.client,
                        side=side,
                        jobs=jobs_by_side[side],
                        processes=processes,
                        threads=threads,
                        redis_pid=server.process.pid,
                        log_dir=tmp,
                        workers=side_workers,
                        queue_key=QUEUE_KEYS[side],
                    )
                )
    finally:
        server.stop()
    by_side = {side: summarize(runs, side) for side in sides}
    ours = by_side["ours"]["msgs_per_second_median"]
    ratios = {
        f"ours_to_{side}": round(ours / figures["msgs_per_second_median"], 2)
        for side, figures in by_side.items()
        if side != "ours"
    }
    return {
        "benchmark": "peers",
        "jobs": jobs_by_side,
        "rounds": rounds,
        "worker": {"processes": processes, "threads": threads},
        "method": (
            "pre-filled queue, first to last completion, sides alternating (each round in the "
            "reverse order of the one before), median and spread per side"
        ),
        "sides": by_side,
        "ratios": ratios,
        "runs": runs,
        "targets": {
            "ratio_ours_to_celery_threads": report.target(
                ratios.get("ours_to_celery_threads"), at_least=TARGET_RATIO_TO_CELERY_THREADS
            )
        },
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.peers", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sides", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--rq-jobs", type=int, default=RQ_FORKING_JOBS)
    args = parser.parse_args()
    result = run(
        jobs=args.jobs,
        rounds=args.rounds,
        processes=args.processes,
        threads=args.threads,
        sides=tuple(args.sides),
        rq_jobs=args.rq_jobs,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
