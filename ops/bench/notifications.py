"""Notifications benchmark: e-mails per second through the full stack (send_email jobs, outbox
rows in SQLite, breaker and rate limit in Redis) to a local aiosmtpd server, on a real
redis-server and a real worker process consuming `notifications`. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ops.local_redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.count += 1
        return "250 OK"


def run(*, emails: int = 1000, threads: int = 8) -> dict[str, Any]:
    server = RedisServer()
    counter = Counter()
    smtp = Controller(counter, hostname="127.0.0.1", port=free_port())
    smtp.start()
    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-bench-notify-"))
    os.environ.update(
        {
            "REDIS_URL": server.url,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "dramatiq_prom_port": str(free_port()),
            "NOTIFY_BACKEND": "live",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            "EMAIL_RATE_PER_SECOND": "100000",
        }
    )
    from domain import db

    db.migrate(os.environ["DATABASE_URL"])
    from actors.middleware.heartbeat import live_workers
    from actors.notifications import SendEmail, send_email

    log = open(tmp / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "actors",
            "--processes",
            "1",
            "--threads",
            str(threads),
            "--queues",
            "notifications",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not live_workers(server.client):
            assert worker.poll() is None and time.monotonic() < deadline, "worker did not start"
            time.sleep(0.1)
        started = time.perf_counter()
        for i in range(emails):
            send_email.send(
                SendEmail(to_email=f"r{i}@example.org", subject="Bench", body_html="<p>x</p>")
            )
        while counter.count < emails:
            assert time.perf_counter() - started < 600, "e-mails did not all arrive"
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        return {
            "benchmark": "notifications",
            "emails": emails,
            "worker_threads": threads,
            "emails_per_second": round(emails / elapsed, 1),
            "seconds": round(elapsed, 2),
        }
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        smtp.stop()
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
