"""Worker throughput, ours vs plain Dramatiq: how fast one worker drains a pre-filled queue.

For each run the queue is filled first (`ops.bench.produce`, the side's real enqueue path), then
a worker starts, and the rate is measured from the first completion to the last: the worker's
start-up and the fill are outside the window. Both sides' actors do the same work (one Redis
INCR, return a small dict), so the counter the benchmark polls costs each side the same. Sides
alternate in ABBA order (plain, ours, ours, plain, ...) on the same Redis, flushed between runs,
with the same processes and threads; the median of each side is compared.

Then the same rounds again with the workers on a network-namespace host 10 ms (`--rtt-ms`) from
Redis (ops/netns.py: root only, else the JSON says why): `rtt` in the JSON.

    python -m ops.bench.throughput [--jobs 20000 --rounds 5 --processes 1 --threads 8]
        [--rtt-ms 10 --rtt-jobs 1000]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis

from ops import netns
from ops.bench import counters, report
from ops.bench.env import CLOCK_TICKS, isolated, process_cpu_s, worker
from ops.bench.produce import SIDES, produce

#: Issue 15, goal 1: ours at least as fast as plain Dramatiq, every guard kept (was 0.7).
TARGET_RATIO = 1.0
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
    usage, redis_cpu = group_usage(groups), process_cpu_s(redis_pid)
    jiffies = report.cpu_jiffies()
    while (done := counters.completed(client)) < jobs:
        assert time.monotonic() < deadline, f"only {done} of {jobs} jobs completed"
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    measured = done - first
    used = [
        (after - before) / measured
        for before, after in zip(usage, group_usage(groups), strict=True)
    ]
    return {
        "drain_seconds": round(elapsed, 3),
        "msgs_per_second": round(measured / elapsed, 1),
        "worker_cpu_us_per_msg": round((used[0] + used[1]) * 1e6),
        "redis_cpu_us_per_msg": round((process_cpu_s(redis_pid) - redis_cpu) / measured * 1e6),
        # Where the worker's CPU goes (user / kernel) and how often its threads block and wake
        # (voluntary switches: a wait on Redis, a lock, the GIL) or are preempted, per job.
        "worker_user_us_per_msg": round(used[0] * 1e6),
        "worker_sys_us_per_msg": round(used[1] * 1e6),
        "worker_switches_per_msg": {
            "voluntary": round(used[2], 2),
            "involuntary": round(used[3], 2),
        },
        # CPU time the hypervisor gave other guests meanwhile, in % of the machine's.
        "steal_percent": report.steal_percent(jiffies, report.cpu_jiffies()),
    }


def group_usage(groups: Sequence[int]) -> tuple[float, float, int, int]:
    """User and system CPU seconds, and voluntary and involuntary context switches (all
    threads), of the live processes of the process groups `groups`."""
    user = system = voluntary = involuntary = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) not in groups:
                continue
            user += int(fields[11]) / CLOCK_TICKS
            system += int(fields[12]) / CLOCK_TICKS
            for status in stat.parent.glob("task/*/status"):
                for line in status.read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
    return user, system, int(voluntary), int(involuntary)


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
    calibration = report.calibration_us()  # the machine's state, before the side's workers run
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
    return {
        "side": side,
        **figures,
        "fill_per_second": fill["enqueue_per_second"],
        "machine_calibration_us": calibration,
    }


def summarize(runs: list[dict[str, Any]], side: str) -> dict[str, Any]:
    mine = [run for run in runs if run["side"] == side]
    rates = [run["msgs_per_second"] for run in mine]
    return {
        "msgs_per_second_median": round(statistics.median(rates), 1),
        "msgs_per_second_spread": [min(rates), max(rates)],
        "msgs_per_second_runs": rates,
        "worker_cpu_us_per_msg_median": statistics.median(r["worker_cpu_us_per_msg"] for r in mine),
        "redis_cpu_us_per_msg_median": statistics.median(r["redis_cpu_us_per_msg"] for r in mine),
        "worker_user_us_per_msg_median": statistics.median(
            r["worker_user_us_per_msg"] for r in mine
        ),
        "worker_sys_us_per_msg_median": statistics.median(r["worker_sys_us_per_msg"] for r in mine),
        "worker_voluntary_switches_per_msg_median": statistics.median(
            r["worker_switches_per_msg"]["voluntary"] for r in mine
        ),
        # Per run, in the order of the rates above: the machine's speed (report.calibration_us,
        # higher is slower) and the CPU stolen by other guests during the drain.
        "machine_calibration_us_runs": [r["machine_calibration_us"] for r in mine],
        "steal_percent_runs": [r["steal_percent"] for r in mine],
    }


def abba(
    client: redis.Redis,
    *,
    rounds: int,
    jobs: int,
    worker: dict[str, int],
    redis_pid: int,
    log_dir: Path,
    workers: Workers = dramatiq_workers,
) -> list[dict[str, Any]]:
    """`rounds` of plain then ours, every other round the other way round (ABBA); `worker`:
    processes and threads."""
    runs = []
    for index in range(rounds):
        for side in DRAMATIQ_SIDES if index % 2 == 0 else DRAMATIQ_SIDES[::-1]:
            runs.append(
                one_run(
                    client,
                    side=side,
                    jobs=jobs,
                    processes=worker["processes"],
                    threads=worker["threads"],
                    redis_pid=redis_pid,
                    log_dir=log_dir,
                    workers=workers,
                )
            )
    return runs


def compared(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each side's summary and the ratio of their medians, with each round's own ratio."""
    plain, ours = summarize(runs, "plain"), summarize(runs, "ours")
    per_round = [
        round(o / p, 3)
        for p, o in zip(plain["msgs_per_second_runs"], ours["msgs_per_second_runs"], strict=True)
    ]
    return {
        "plain": plain,
        "ours": ours,
        "ratio_ours_to_plain": round(
            ours["msgs_per_second_median"] / plain["msgs_per_second_median"], 3
        ),
        "ratio_per_round": per_round,
        "ratio_spread": [min(per_round), max(per_round)],
    }


def run(
    *,
    jobs: int = 20_000,
    rounds: int = 5,
    processes: int = 1,
    threads: int = 8,
    rtt_ms: float = 10,
    rtt_jobs: int = 1_000,
) -> dict[str, Any]:
    """The ABBA rounds on this machine; then, with `rtt_ms` > 0, the same rounds (`rtt_jobs`
    each) with the workers on a network-namespace host `rtt_ms` from Redis (ops/netns.py)."""
    load_before = report.load()
    why = netns.reason() if rtt_ms > 0 else "not asked (--rtt-ms 0)"
    sizes = {"processes": processes, "threads": threads}
    with ExitStack() as stack:
        hosts = [] if why else stack.enter_context(netns.hosts(1))
        server, tmp = isolated(bind=("127.0.0.1", *(host.gateway for host in hosts)))
        stack.callback(server.stop)
        runs = abba(
            server.client,
            rounds=rounds,
            redis_pid=server.process.pid,
            log_dir=tmp,
            jobs=jobs,
            worker=sizes,
        )
        far: dict[str, Any] = {"rtt_ms": rtt_ms, "jobs": rtt_jobs}
        if why:
            far["skipped"] = f"no worker host {rtt_ms:g} ms from Redis: {why}"
        else:
            host = hosts[0]
            url = stack.enter_context(netns.path_to_redis(host, server.port, rtt_ms))
            far["measured_rtt_ms"] = netns.measured_rtt_ms(host, url)
            far_runs = abba(
                server.client,
                rounds=rounds,
                redis_pid=server.process.pid,
                log_dir=tmp,
                workers=functools.partial(
                    dramatiq_workers, env={"REDIS_URL": url}, prefix=host.run
                ),
                jobs=rtt_jobs,
                worker=sizes,
            )
            far.update(compared(far_runs), runs=far_runs)
    near = compared(runs)
    ratio = near["ratio_ours_to_plain"]
    return {
        "benchmark": "throughput",
        "jobs": jobs,
        "rounds": rounds,
        "worker": sizes,
        "method": (
            "pre-filled queue, from the first completion once every worker process consumes to "
            "the last, ABBA order, median per side"
        ),
        **near,
        "runs": runs,
        "rtt": far,
        "targets": {"ratio_ours_to_plain": report.target(ratio, at_least=TARGET_RATIO)},
        "load": {"before": load_before, "after": report.load()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops.bench.throughput", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--rtt-ms", type=float, default=10, help="round trip of the far rounds (0: none)"
    )
    parser.add_argument("--rtt-jobs", type=int, default=1_000, help="jobs of each far run")
    print(json.dumps(run(**vars(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
