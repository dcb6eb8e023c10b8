"""Start a Dramatiq worker for some queues with its own Prometheus port (one per Procfile line).

python -m ops.worker --queues ml_heavy --threads 1 --metrics-port 9191 --max-memory-mb 1500

With --max-jobs-per-process or --max-memory-mb, a worker process past its limit finishes its
jobs, hands back what it fetched and exits with RECYCLE_EXIT_CODE (runtime's Recycle
middleware); Dramatiq's CLI then stops (it never replaces a worker process) and this launcher
starts it again.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from types import FrameType

#: Runtime's RECYCLE_EXIT_CODE, repeated: importing runtime here would import Dramatiq's
#: Prometheus middleware before its environment is set (tests/ops/test_worker.py checks they agree).
RECYCLE_EXIT_CODE = 75
#: How long a recycling waits for the previous generation's metrics server to let go of its port.
CHILDREN_GONE_S = 10.0


class MainProcessLog(logging.Filter):
    """Reads Dramatiq's main-process log: it reports any worker exit as critical ("exited
    unexpectedly"), and a recycling is planned, so that line says so at INFO; and it is the only
    trace of a stop signal received while a recycling was under way, which must stop rather than
    start a new generation (Dramatiq's CLI keeps its signal state to itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_signalled = False

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Sending signal"):
            self.stop_signalled = True
        if "exited unexpectedly" in str(record.msg) and RECYCLE_EXIT_CODE in (
            record.args if isinstance(record.args, tuple) else ()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "Worker with PID %r recycled (code %r); starting a fresh one..."
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops.worker", description=__doc__)
    parser.add_argument("--queues", nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument(
        "--max-jobs-per-process",
        type=int,
        default=0,
        help="replace a worker process after this many jobs (0: never)",
    )
    parser.add_argument(
        "--max-memory-mb",
        type=int,
        default=0,
        help="replace a worker process whose resident memory reaches this after a job (0: never)",
    )
    parser.add_argument(
        "--cpu-pin",
        choices=("auto", "off"),
        default=None,
        help="keep each worker process's threads on one CPU (default: WORKER_CPU_PIN, else auto; "
        "off for jobs that use several cores themselves)",
    )
    # The module Dramatiq's CLI loads; tests point it at their own jobs.
    parser.add_argument("--module", default="actors:setup", help=argparse.SUPPRESS)
    parser.add_argument("--worker-shutdown-timeout", type=int, default=600_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.max_jobs_per_process < 0 or args.max_memory_mb < 0:
        print("ops.worker: --max-jobs-per-process and --max-memory-mb are >= 0", file=sys.stderr)
        return 2

    # Dramatiq's Prometheus middleware keeps multiprocess samples in a directory read at import:
    # one directory per port, emptied at start so counters restart with the launcher (and carry
    # on across recyclings, which count in them).
    prom_dir = os.path.join(tempfile.gettempdir(), f"gaveurs-prom-{args.metrics_port}")
    shutil.rmtree(prom_dir, ignore_errors=True)
    os.makedirs(prom_dir)
    os.environ["dramatiq_prom_port"] = str(args.metrics_port)
    os.environ["dramatiq_prom_db"] = prom_dir
    # Read by runtime.setup's Settings in each worker process.
    os.environ["WORKER_MAX_JOBS_PER_PROCESS"] = str(args.max_jobs_per_process)
    os.environ["WORKER_MAX_MEMORY_MB"] = str(args.max_memory_mb)
    if args.cpu_pin is not None:
        os.environ["WORKER_CPU_PIN"] = args.cpu_pin

    if args.max_jobs_per_process or args.max_memory_mb:
        # With recycling, import the jobs once here: each worker process, the first and every
        # replacement, is a fork that inherits them instead of importing them again (4-5 s per
        # recycling). Not otherwise: the metrics server Dramatiq forks from this process would
        # inherit them too. Importing connects to nothing (each worker process calls `setup`);
        # it must come before dramatiq.cli is imported, by which `actors` knows it is a worker.
        importlib.import_module(args.module.partition(":")[0])

    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    dramatiq_args = make_argument_parser().parse_args(
        [
            args.module,
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--worker-shutdown-timeout",
            str(args.worker_shutdown_timeout),
            "--queues",
            *args.queues,
        ]
    )
    main_log = MainProcessLog()
    logging.getLogger("dramatiq.MainProcess").addFilter(main_log)
    stopping: list[int] = []

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    try:
        while True:
            code = int(dramatiq_main(dramatiq_args) or 0)
            if code != RECYCLE_EXIT_CODE:
                return code
            # Between two generations Dramatiq's signal handlers point at processes that are gone.
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, on_stop)
            _wait_for_children()
            if stopping or main_log.stop_signalled:
                return 0
            # Dramatiq's CLI logs through a pipe read by a thread of the generation that just ended;
            # let the next one set logging up afresh.
            for handler in list(logging.root.handlers):
                logging.root.removeHandler(handler)
                handler.close()
    finally:
        # Its samples are read while it runs only (a restart empties it anyway).
        shutil.rmtree(prom_dir, ignore_errors=True)


def _wait_for_children() -> None:
    """The metrics exposition server (a fork of the previous generation) must release its port
    before the next generation starts its own."""
    deadline = time.monotonic() + CHILDREN_GONE_S
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
