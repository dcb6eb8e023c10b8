"""A throw-away Redis and SQLite for one benchmark process, set in the environment before the
broker is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ops.local_redis import RedisServer, free_port


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
