"""A throw-away Redis and SQLite for one benchmark process (set in the environment before the
broker is imported), and a real worker process on them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from ops.local_redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def isolated(**extra: str) -> tuple[RedisServer, Path]:
    server = RedisServer()
    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-bench-"))
    os.environ.update(
        {
            "REDIS_URL": server.url,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "dramatiq_prom_port": str(free_port()),
            **extra,
        }
    )
    return server, tmp


@contextmanager
def worker(
    client: redis.Redis, *, module: str, queue: str, threads: int, log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `dramatiq` worker process consuming `queue`, live (heartbeating) when yielded."""
    from actors.middleware.heartbeat import live_workers

    with open(log_dir / "worker.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                module,
                "--processes",
                "1",
                "--threads",
                str(threads),
                "--queues",
                queue,
            ],  # fmt: skip
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not live_workers(client):
                assert process.poll() is None and time.monotonic() < deadline, (
                    "worker did not start"
                )
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)
