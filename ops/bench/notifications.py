"""Notifications benchmark: e-mails per second through the full stack (send_email jobs, outbox
rows in SQLite, breaker and rate limit in Redis) to a local aiosmtpd server, on a real
redis-server and a real worker process consuming `notifications`. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller

from ops.bench.env import isolated, worker
from ops.local_redis import free_port


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.count += 1
        return "250 OK"


def run(*, emails: int = 1000, threads: int = 8) -> dict[str, Any]:
    counter = Counter()
    smtp = Controller(counter, hostname="127.0.0.1", port=free_port())
    smtp.start()
    server, tmp = isolated(
        NOTIFY_BACKEND="live",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_SECURITY="none",
        EMAIL_RATE_PER_SECOND="100000",
    )
    from actors.notifications import SendEmail, send_email

    try:
        with worker(
            server.client,
            module="actors:setup",
            queue="notifications",
            threads=threads,
            log_dir=tmp,
        ):
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
        smtp.stop()
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
