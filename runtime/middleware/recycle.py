"""A worker process past its job count or memory limit stops taking work and is replaced.

Celery has `--max-tasks-per-child` and `--max-memory-per-child`; Dramatiq has neither, and our
ML jobs (pandas, Prophet, scikit-learn) leave a worker's memory higher after each run. After each
job this middleware checks the process against its limits. Past one, the worker thread that ran
the job pauses (it takes no new message), and the process stops the way a SIGTERM stops it:
running jobs finish, messages fetched but not started go back to their queue (Worker.stop and
Handover), and only then the process exits with `RECYCLE_EXIT_CODE`. Dramatiq's CLI then stops
its other processes and returns that code; `ops.worker` starts the CLI again (a fresh process,
a fresh heap). Nothing is acked twice and nothing is dropped, because it is the ordinary
graceful stop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import dramatiq
import psutil
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

#: Exit code of a recycled worker process (EX_TEMPFAIL: "try again"), distinct from Dramatiq's
#: RET_* codes (0 to 4), so the launcher tells a recycling from a crash or a stop.
RECYCLE_EXIT_CODE = 75
MB = 1024 * 1024

logger = logging.getLogger("gaveurs.recycle")


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / MB


class Recycle(Middleware):
    """Limits of 0 are off; with both off `runtime.setup` does not install this middleware."""

    def __init__(self, *, max_jobs: int = 0, max_memory_mb: int = 0) -> None:
        if max_jobs < 0 or max_memory_mb < 0:
            raise ValueError("worker recycling limits must be >= 0 (0 turns a limit off)")
        self.max_jobs = max_jobs
        self.max_memory_mb = max_memory_mb
        self.jobs = 0
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._queues: list[str] = []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._queues = sorted(q for q in worker.consumers if not q.endswith(".DQ"))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self.jobs += 1
            if self.reason is not None:
                return self._pause_this_thread()
            reason = self._over_limit()
            if reason is None:
                return None
            self.reason = reason
        logger.warning(
            "recycling worker process %d (queues %s): %s; finishing current jobs, handing "
            "back prefetched messages",
            os.getpid(),
            ",".join(self._queues),
            reason,
        )
        self._count()
        self._pause_this_thread()
        # The graceful stop Dramatiq's worker process runs on SIGTERM (handled by its main
        # thread, which is never this worker thread).
        os.kill(os.getpid(), signal.SIGTERM)
        return None

    def _over_limit(self) -> str | None:
        if self.max_jobs and self.jobs >= self.max_jobs:
            return f"{self.jobs} jobs run, limit {self.max_jobs} (--max-jobs-per-process)"
        if self.max_memory_mb:
            rss = rss_mb()
            if rss >= self.max_memory_mb:
                return f"RSS {rss:.0f} MB, limit {self.max_memory_mb} MB (--max-memory-mb)"
        return None

    @staticmethod
    def _pause_this_thread() -> None:
        thread = threading.current_thread()
        if hasattr(thread, "pause"):
            thread.pause()  # a Dramatiq WorkerThread: no new message until the stop

    def _count(self) -> None:
        """`gaveurs_worker_recycles_total{queues, reason}`, in the worker's multiprocess metrics
        directory, so it survives this process and is served by the exposition server."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return  # no Prometheus middleware booted in this process (a unit test)
        import prometheus_client as prom

        counter = prom.Counter(
            "gaveurs_worker_recycles",
            "Worker processes replaced after reaching their job count or memory limit.",
            ["queues", "reason"],
            registry=prom.CollectorRegistry(),
        )
        kind = "memory" if self.reason and self.reason.startswith("RSS") else "jobs"
        counter.labels(",".join(self._queues), kind).inc()

    after_skip_message = after_process_message

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # First in the middleware list, so the last after-hook: every other middleware (Handover
        # giving back unacked messages, the journal flush, metrics) has already run.
        if self.reason is not None:
            logger.info("worker process %d recycled after %d jobs", os.getpid(), self.jobs)
            raise SystemExit(RECYCLE_EXIT_CODE)
