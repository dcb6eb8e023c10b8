"""A worker process's threads kept on one CPU (WORKER_CPU_PIN=auto, the default).

Only one Python thread of a process runs at a time (the GIL), and a worker's threads hand it to
each other at every Redis call and every job. When they are spread over several cores, each
hand-over wakes a thread on another core: an inter-processor interrupt (on a virtual machine, a
trip through the hypervisor), a cold cache, the kernel's cross-core wake-up path. On one core the
thread that waits is simply next. Measured here (2 cores, `python -m ops.bench throughput`, one
process of 8 threads draining no-ops next to Redis): ~1,950 jobs/s and ~500 µs of worker CPU a
job spread over both cores, ~2,900 jobs/s and ~310 µs kept on one.

A process is pinned only where that cannot cost it:
- it is a worker process of Dramatiq's CLI (`dramatiq`, `ops.worker`), not a program that runs a
  Worker itself (a test would pin itself and all it starts);
- it runs at least two worker threads (one thread has nobody to hand the GIL to);
- it may run on at least two CPUs (else it is pinned already);
- its CPU time is not capped by a cgroup quota. A capped container usually shares a host's CPUs
  with other tenants, and the host's scheduler must stay free to move it.
- a CPU it may use holds no pinned worker yet. Each pinned process takes a CPU of its own (a
  registry of one file per pinned process of this machine, under a lock), so the Procfile's
  worker types and the `--processes` of one launcher spread over the cores; the ones past the
  number of CPUs stay unpinned, free to run wherever a core is idle. (All of them pinned, with two
  per core, was worse than none: 4 processes x 8 threads on 2 cores drained 3,260 jobs/s pinned
  two by two, 3,700 unpinned, 3,860 with one per core; a pinned process cannot move to the core
  another leaves idle while it waits.)

Threads and processes a job starts inherit the CPU: a worker whose jobs run native code on
several cores (BLAS threads, joblib) opts out, `ops.worker --cpu-pin off` (the Procfile's ML
workers).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import dramatiq
from dramatiq.middleware import Middleware

logger = logging.getLogger("gaveurs.cpu_pin")

MODES = ("auto", "off")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def checked(mode: str) -> str:
    """`mode` if it is one of MODES, else a ValueError naming the setting."""
    if mode not in MODES:
        raise ValueError(f"WORKER_CPU_PIN must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def registry_dir() -> Path:
    """Where this machine's pinned workers are listed: one per user, in the runtime directory
    (tmpfs, emptied at boot) or the temporary one."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"gaveurs-cpu-pins-{os.getuid()}"


def cpu_quota(root: Path = CGROUP_ROOT) -> str | None:
    """The cgroup CPU quota of this process ("50000/100000" µs per period), None without one.
    cgroup v2's cpu.max, else v1's cfs_quota_us (a container sees its own cgroup at the root)."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
        return None if quota.strip() == "max" else f"{quota.strip()}/{period.strip()}"
    except OSError:
        pass
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        try:
            quota = (root / controller / "cpu.cfs_quota_us").read_text().strip()
        except OSError:
            continue
        if quota != "-1":
            period = (root / controller / "cpu.cfs_period_us").read_text().strip()
            return f"{quota}/{period}"
        return None
    return None


def entry(registry: Path, cpu: int) -> Path:
    """This process's entry in `registry`, holding `cpu` (`unheld_cpu` reads the name back)."""
    return registry / f"{os.getpid()}-{cpu}.pin"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def unheld_cpu(allowed: Iterable[int], registry: Path) -> int | None:
    """The lowest allowed CPU that no live process of `registry` holds, None when each holds
    one already; entries of processes that have exited are removed."""
    held: set[int] = set()
    for entry in registry.glob("*.pin"):
        try:
            pid, cpu = (int(part) for part in entry.stem.split("-"))
        except ValueError:
            continue
        if not _alive(pid):
            entry.unlink(missing_ok=True)
        else:
            held.add(cpu)
    return min(set(allowed) - held, default=None)


def pin_process(cpu: int) -> None:
    """Every thread of this process (and those it starts later) on `cpu`."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except (ProcessLookupError, FileNotFoundError):
            continue  # a thread that ended meanwhile


def pin_worker(*, threads: int, mode: str, registry: Path | None = None) -> int | None:
    """Pin this worker process as the module says; the CPU it now runs on, or None (and why,
    logged) when it is left where it was."""
    allowed = os.sched_getaffinity(0)
    why = None
    if checked(mode) == "off":
        why = "WORKER_CPU_PIN=off"
    elif "dramatiq.cli" not in sys.modules or multiprocessing.parent_process() is None:
        # A Worker run inside another program (a test, a script) would pin that program, and
        # every process it starts afterwards.
        why = "not a worker process of Dramatiq's CLI"
    elif threads < 2:
        why = "one worker thread"
    elif len(allowed) < 2:
        why = f"one CPU allowed ({min(allowed)})"
    elif (quota := cpu_quota()) is not None:
        why = f"cgroup CPU quota {quota}: the host's scheduler keeps placing it"
    if why is not None:
        logger.info("worker threads not pinned to a CPU: %s", why)
        return None
    registry = registry or registry_dir()
    registry.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(registry / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cpu = unheld_cpu(allowed, registry)
        if cpu is not None:
            entry(registry, cpu).touch()
    if cpu is None:
        logger.info("worker threads not pinned to a CPU: each CPU has a pinned worker already")
        return None
    try:
        pin_process(cpu)
    except OSError:
        entry(registry, cpu).unlink(missing_ok=True)  # holds no CPU after all
        raise
    logger.info("worker threads pinned to CPU %d of %s", cpu, sorted(allowed))
    return cpu


class CpuPin(Middleware):
    """Pins the worker process as it boots, before its consumer and worker threads start."""

    def __init__(self, *, mode: str = "auto") -> None:
        self.mode = checked(mode)
        self.cpu: int | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        try:
            self.cpu = pin_worker(threads=worker.worker_threads, mode=self.mode)
        except OSError as error:  # a refused affinity or registry: run unpinned, as before
            logger.warning("worker threads not pinned to a CPU: %s", error)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.cpu is not None:
            entry(registry_dir(), self.cpu).unlink(missing_ok=True)
