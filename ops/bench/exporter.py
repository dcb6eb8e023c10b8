"""Exporter benchmark: time of one scrape with large queues (it must not scan them), and of
one `gaveurs status`-style read. Run by `python -m ops.bench`.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from ops.bench.env import isolated


def run(*, messages: int = 100_000, scrapes: int = 50) -> dict[str, Any]:
    server, _tmp = isolated()
    from prometheus_client import CollectorRegistry, generate_latest

    from ops.bench.jobs import Noop, noop
    from ops.exporter import BrokerCollector
    from runtime import Control, broker, records

    try:
        started = time.perf_counter()
        for i in range(messages):
            noop.send(Noop(n=i))
        fill_s = time.perf_counter() - started
        registry = CollectorRegistry()
        registry.register(BrokerCollector(Control(broker(), records())))
        durations = []
        for _ in range(scrapes):
            began = time.perf_counter()
            body = generate_latest(registry)
            durations.append((time.perf_counter() - began) * 1000)
        assert f'gaveurs_queue_ready_messages{{queue="default"}} {messages}.0' in body.decode()
        return {
            "benchmark": "exporter",
            "ready_messages": messages,
            "job_records": messages,
            "fill_seconds": round(fill_s, 1),
            "scrape_ms": {
                "p50": round(statistics.median(durations), 2),
                "max": round(max(durations), 2),
            },
            "redis_used_memory_bytes": int(broker().client.info("memory")["used_memory"]),
        }
    finally:
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
