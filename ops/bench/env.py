"""A throw-away Redis and SQLite for one benchmark process (set in the environment before the
broker is imported), and the real processes the benchmarks drive on them: workers, the API
(started as the Procfile starts it), the clock. Each runs in its own process group, so a crash
can be simulated by SIGKILLing the whole group and its CPU time can be read from /proc.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from ops.local_redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def isolated(*, bind: tuple[str, ...] = ("127.0.0.1",), **extra: str) -> tuple[RedisServer, Path]:
    """A fresh Redis (listening on `bind`), and a SQLite database migrated as the Procfile's
    `release` step does (the job journal and the notification outbox write there); the runtime
    of this process is set up for them, as an entry point does."""
    import actors
    from domain.platform import db
    from domain.platform.settings import get_settings

    server = RedisServer(bind=bind)
    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-bench-"))
    atexit.register(_drop_databases, tmp)
    os.environ.update(
        {
            "REDIS_URL": server.url,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "dramatiq_prom_port": str(free_port()),
            **extra,
        }
    )
    db.migrate(os.environ["DATABASE_URL"])
    get_settings.cache_clear()
    actors.setup()
    return server, tmp


def _drop_databases(tmp: Path) -> None:
    """At exit: a benchmark's databases (up to half a GiB) go, its logs stay for reading."""
    for path in tmp.glob("*.db*"):
        path.unlink(missing_ok=True)


def _metrics_env() -> dict[str, str]:
    # Dramatiq's Prometheus middleware binds a port and keeps samples in a directory: each
    # process gets its own, so two workers alive at once never collide. Removed at exit.
    prom_dir = tempfile.mkdtemp(prefix="gaveurs-prom-bench-")
    atexit.register(shutil.rmtree, prom_dir, ignore_errors=True)
    return {"dramatiq_prom_port": str(free_port()), "dramatiq_prom_db": prom_dir}


@contextmanager
def spawned(
    command: Sequence[str], *, log_dir: Path, name: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process (and its children) in its own group, stopped when the block ends."""
    metrics = _metrics_env()
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, **metrics, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)
            shutil.rmtree(metrics["dramatiq_prom_db"], ignore_errors=True)


def stop(process: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
    """SIGTERM to the main process only: Dramatiq's forwards it to its worker processes, and a
    worker process that gets a second SIGTERM exits at once, mid-job."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group (Dramatiq's main process and its worker processes), as an OOM
    kill or a lost machine would: no shutdown hook runs."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@contextmanager
def worker(
    client: redis.Redis,
    *,
    module: str,
    queue: str | Sequence[str],
    threads: int,
    log_dir: Path,
    processes: int = 1,
    env: Mapping[str, str] | None = None,
    wait_live: bool = True,
    name: str = "worker",
    prefix: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `dramatiq` worker consuming `queue`. With `wait_live`, yielded once it heartbeats
    in our worker registry; plain Dramatiq has no registry, so its callers wait for what they
    need themselves (a first completion, a job started). `prefix` runs it elsewhere (on a test
    host of ops/netns.py: `host.run`)."""
    queues = [queue] if isinstance(queue, str) else list(queue)
    ready = _new_live_worker(client) if wait_live else lambda: True
    command = [
        *prefix, sys.executable, "-m", "dramatiq", module,
        "--processes", str(processes), "--threads", str(threads), "--queues", *queues,
    ]  # fmt: skip
    with spawned(command, log_dir=log_dir, name=name, env=env) as process:
        deadline = time.monotonic() + 60
        while not ready():
            assert process.poll() is None and time.monotonic() < deadline, (
                f"worker did not start; see {log_dir / name}.log"
            )
            time.sleep(0.1)
        yield process


def _new_live_worker(client: redis.Redis) -> Callable[[], bool]:
    from runtime import live_workers

    known = {w["pid"] for w in live_workers(client)}
    return lambda: bool({w["pid"] for w in live_workers(client)} - known)


@dataclass(frozen=True)
class Api:
    url: str
    pid: int  # also its process group


@contextmanager
def api_server(
    *, log_dir: Path, env: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[Api]:
    """The API as the Procfile's `web` line starts it (`python -m api.serve`: uvicorn, no access
    log, `workers` processes as WEB_CONCURRENCY would give), on a free port, once /healthz
    answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "api.serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with spawned(command, log_dir=log_dir, name="api", env=env) as process:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.1)
        yield Api(base, process.pid)


@contextmanager
def clock(*, log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """A real clock process (`python -m scheduler`, the Procfile's `clock`) on wall-clock time."""
    with spawned([sys.executable, "-m", "scheduler"], log_dir=log_dir, name="clock", env=env):
        yield


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one live process."""
    return _cpu_of(Path(f"/proc/{pid}/stat").read_text())[1]


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            group, seconds = _cpu_of(stat.read_text())
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        if group == pgid:
            total += seconds
    return total


def _cpu_of(stat: str) -> tuple[int, float]:
    # Fields after the command name (which may hold spaces): state ppid pgrp ... utime stime.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
