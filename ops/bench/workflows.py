"""Workflows: what a step costs over a bare job, and a wide chord beside Dramatiq's group
completion callback, on the same Redis and the same worker.

1. Cost per step. N bare jobs (`wf_step.send`) and a workflow of N steps without dependencies
   (one group) are each put in the queue first, then one worker drains them; measured from the
   first completion to the last: rate, Redis commands and script calls per job, worker and Redis
   CPU per job. A step's end advances its workflow inside the same settle script as a bare job's,
   so the script calls per job must be equal (target: at most one extra round trip).
2. Wide chord. A W-wide group then one callback, with the workers already running: ours
   (`chord`, the callback receiving nothing and, separately, all W results), Dramatiq's
   `group(...).add_completion_callback(...)` on the same broker, and Celery's `chord` (members
   and callback as bare `@app.task`s, ops/bench/celery_chords.py; its Redis result backend on the
   same Redis; a threads-pool worker of 8 threads, like ours). Celery's callback always gets the
   W results. Time from the submit call to the callback's end, and the submit call alone.

Rounds alternate sides (ABAB); medians and spreads are reported.

    python -m ops.bench.workflows [--jobs 5000 --width 10000 --rounds 5 --threads 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import redis

from ops.bench import counters, report
from ops.bench.env import group_cpu_s, isolated, process_cpu_s, spawned, worker
from ops.bench.peers import celery_command

MODULE = "ops.bench.workflow_jobs:setup"


def _stats(client: redis.Redis) -> tuple[int, int]:
    """(commands processed, script calls) so far, from Redis's own counters."""
    commands = client.info("commandstats")
    total = sum(int(v["calls"]) for v in commands.values())
    scripts = sum(
        int(commands.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval")
    )
    return total, scripts


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def drain(
    client: redis.Redis, *, fill: Callable[[], None], jobs: int, redis_pid: int, log_dir: Path
) -> dict[str, float]:
    client.flushall()
    fill()
    assert client.llen("dramatiq:default") == jobs, "the queue was not filled"
    with worker(
        client, module=MODULE, queue="default", threads=8, log_dir=log_dir, wait_live=False
    ) as process:
        deadline = time.monotonic() + 600
        while counters.completed(client) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        started, first = time.perf_counter(), counters.completed(client)
        worker_cpu, redis_cpu = group_cpu_s(process.pid), process_cpu_s(redis_pid)
        commands, scripts = _stats(client)
        while (done := counters.completed(client)) < jobs:
            assert time.monotonic() < deadline, f"only {done} of {jobs}"
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        measured = done - first
        commands_after, scripts_after = _stats(client)
        return {
            "msgs_per_second": measured / elapsed,
            # The benchmark's own polling (GET of the counter) is in the command counts: about
            # elapsed / 5 ms commands, the same for both sides.
            "redis_commands_per_job": (commands_after - commands) / measured,
            "script_calls_per_job": (scripts_after - scripts) / measured,
            "worker_cpu_us_per_job": (group_cpu_s(process.pid) - worker_cpu) / measured * 1e6,
            "redis_cpu_us_per_job": (process_cpu_s(redis_pid) - redis_cpu) / measured * 1e6,
        }


def cost_per_step(client: redis.Redis, *, jobs: int, rounds: int, redis_pid: int) -> dict[str, Any]:
    from ops.bench import workflow_jobs as w
    from runtime import group, submit_workflow

    def bare() -> None:
        for n in range(jobs):
            w.wf_step.send(w.Step(n=n))

    def steps() -> None:
        submit_workflow(group(w.wf_step.step(w.Step(n=n)) for n in range(jobs)))

    log_dir = Path(tempfile.mkdtemp(prefix="gaveurs-bench-wf-"))
    runs: dict[str, list[dict[str, float]]] = {"bare_job": [], "workflow_step": []}
    for _ in range(rounds):
        for side, fill in (("bare_job", bare), ("workflow_step", steps)):
            runs[side].append(
                drain(client, fill=fill, jobs=jobs, redis_pid=redis_pid, log_dir=log_dir)
            )
    out: dict[str, Any] = {}
    for side, figures in runs.items():
        out[side] = {name: _spread([f[name] for f in figures]) for name in figures[0]}
    extra = (
        out["workflow_step"]["script_calls_per_job"]["median"]
        - out["bare_job"]["script_calls_per_job"]["median"]
    )
    out["extra_script_calls_per_step"] = round(extra, 3)
    return out


def wide_chord(client: redis.Redis, *, width: int, rounds: int) -> dict[str, Any]:
    import celery

    from ops.bench import celery_chords as c
    from ops.bench import workflow_jobs as w
    from runtime import chord, group, submit_workflow

    def ours(receives: bool) -> Callable[[], None]:
        def submit() -> None:
            members = group(w.wf_step.step(w.Step(n=n)) for n in range(width))
            callback = w.wf_callback.step(
                w.Callback(), receives="results" if receives else None, name="callback"
            )
            submit_workflow(chord(members, callback))

        return submit

    def dramatiq_group() -> None:
        messages = [w.wf_step.actor.message_with_options(kwargs={"n": n}) for n in range(width)]
        callback = w.wf_callback.actor.message_with_options(kwargs={})
        group_ = dramatiq.group(messages)
        group_.add_completion_callback(callback)  # returns None, not the group
        group_.run()

    def celery_chord() -> None:
        celery.chord(c.chord_member.s(n) for n in range(width))(c.chord_callback.s())

    sides: dict[str, Callable[[], None]] = {
        "ours_chord": ours(False),
        "ours_chord_passing_results": ours(True),
        "dramatiq_group_callback": dramatiq_group,
        "celery_chord": celery_chord,
    }
    log_dir = Path(tempfile.mkdtemp(prefix="gaveurs-bench-chord-"))
    totals: dict[str, list[float]] = {side: [] for side in sides}
    submits: dict[str, list[float]] = {side: [] for side in sides}
    client.flushall()
    celery_worker = celery_command("threads", 8, 0, app="ops.bench.celery_chords")
    with (
        worker(client, module=MODULE, queue="default", threads=8, log_dir=log_dir),
        spawned(celery_worker, log_dir=log_dir, name="celery-worker"),
    ):
        c.chord_member.delay(-1).get(timeout=120)  # Celery's worker is up
        for _ in range(rounds):
            for side, submit in sides.items():
                client.delete(w.CALLBACKS)
                started = time.perf_counter()
                submit()
                submits[side].append(time.perf_counter() - started)
                deadline = time.monotonic() + 900
                while not client.get(w.CALLBACKS):
                    assert time.monotonic() < deadline, f"{side}: no callback"
                    time.sleep(0.005)
                totals[side].append(time.perf_counter() - started)
                time.sleep(0.5)  # let the callback's settle land before the next side
                assert int(client.get(w.CALLBACKS) or 0) == 1, f"{side}: callback ran twice"
    return {
        side: {"submit_s": _spread(submits[side]), "callback_done_s": _spread(totals[side])}
        for side in sides
    }


def run(*, jobs: int, width: int, rounds: int) -> dict[str, Any]:
    server, _ = isolated()
    try:
        client = server.client
        redis_pid = int(client.info("server")["process_id"])
        before = report.load()
        cost = cost_per_step(client, jobs=jobs, rounds=rounds, redis_pid=redis_pid)
        chords = wide_chord(client, width=width, rounds=rounds)
        ours = chords["ours_chord"]["callback_done_s"]["median"]
        theirs = chords["dramatiq_group_callback"]["callback_done_s"]["median"]
        # Celery's callback always receives every result: compared with ours doing the same.
        passing = chords["ours_chord_passing_results"]["callback_done_s"]["median"]
        celery = chords["celery_chord"]["callback_done_s"]["median"]
        return {
            "benchmark": "workflows",
            "jobs": jobs,
            "width": width,
            "rounds": rounds,
            "worker": "1 process, 8 threads",
            "cost_per_step": cost,
            "wide_chord": chords,
            "targets": {
                # A step's end rides on the settle script every job runs: no extra round trip.
                "extra_script_calls_per_step": report.target(
                    cost["extra_script_calls_per_step"], at_most=1
                ),
                "chord_vs_dramatiq_group_callback_time_ratio": report.target(
                    round(ours / theirs, 3), at_most=1
                ),
                "chord_passing_results_vs_celery_chord_time_ratio": report.target(
                    round(passing / celery, 3), at_most=1
                ),
            },
            "load": {"before": before, "after": report.load()},
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--width", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(jobs=args.jobs, width=args.width, rounds=args.rounds), indent=2))


if __name__ == "__main__":
    main()
