"""Fill a queue with counted no-ops, or send one slow job, from a separate process, through one
side's real enqueue path (ours: `Job.send`, which validates the payload and writes the job
record; plain: the actor's `send`). A process per side keeps the plain side free of our broker
and middleware.

    python -m ops.bench.produce ours 20000 [--start 0]
    python -m ops.bench.produce plain --slow KEY --seconds 10
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from ops.bench.env import ROOT

#: What Dramatiq's CLI loads for each side: its module (which also holds its `fill`), and for
#: ours the function that sets the runtime up (`module:setup`, as ops/worker.py passes it).
SIDES = {
    "ours": "ops.bench.jobs:setup",
    "plain": "ops.bench.plain_jobs",
    # The peers of ops/bench/peers.py (their modules have a `fill` too; their workers are theirs).
    "celery": "ops.bench.celery_jobs",
    "rq": "ops.bench.rq_jobs",
}


def produce(
    side: str, count: int, *, producers: int = 1, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Enqueue `count` no-ops from `producers` parallel processes; their enqueue rate."""
    share, extra = divmod(count, producers)
    commands, start = [], 0
    for index in range(producers):
        size = share + (1 if index < extra else 0)
        commands.append(
            [sys.executable, "-m", "ops.bench.produce", side, str(size), "--start", str(start)]
        )
        start += size
    started = time.perf_counter()
    running = [
        subprocess.Popen(c, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE)
        for c in commands
    ]
    outputs = [process.communicate()[0] for process in running]
    elapsed = time.perf_counter() - started
    if any(process.returncode for process in running):
        raise RuntimeError(f"a {side} producer failed")
    # The processes' own enqueue time, without their start-up (imports: ~2 s for ours).
    enqueue_s = max(json.loads(output)["seconds"] for output in outputs)
    return {
        "producers": producers,
        "enqueued": count,
        "enqueue_seconds": round(enqueue_s, 2),
        "enqueue_per_second": round(count / enqueue_s, 1),
        "wall_seconds_with_start_up": round(elapsed, 2),
    }


def send_slow(side: str, key: str, seconds: float, *, env: Mapping[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "ops.bench.produce", side, "--slow", key]
    subprocess.run(
        [*command, "--seconds", str(seconds)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops.bench.produce", description=__doc__)
    parser.add_argument("side", choices=sorted(SIDES))
    parser.add_argument("count", type=int, nargs="?", default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--slow", metavar="KEY", help="send one slow job with this key instead")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    name, _, setup = SIDES[args.side].partition(":")
    module = importlib.import_module(name)
    if setup:
        getattr(module, setup)()
    if args.slow:
        print(json.dumps({"task_id": module.send_slow(args.slow, args.seconds)}))
        return 0
    started = time.perf_counter()
    module.fill(args.count, start=args.start)
    print(json.dumps({"enqueued": args.count, "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
