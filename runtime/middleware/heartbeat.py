"""Worker heartbeats: which worker processes are alive, which queues they consume, what they did.

Dramatiq's own broker heartbeats are per consumer and anonymous (and producers appear in them);
this registry is per worker process, written every few seconds, and read by the API's stats route,
the metrics exporter and the console. Each beat carries the jobs processed and failed per queue
and the process' RSS. A worker that stops cleanly is kept a day as stopped; one that goes silent
(killed, host lost) stays in the registry with its last beat: `gone_workers` lists both.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from runtime.middleware.recycle import rss_mb

WORKERS_KEY = "gaveurs:workers"
SEEN_KEY = "gaveurs:workers:seen"
#: Workers that stopped cleanly: id -> when (Redis time, s).
STOPPED_KEY = "gaveurs:workers:stopped"
#: How long the registry remembers a worker after its last beat or its stop.
FORGET_AFTER_S = 86400
INTERVAL_S = 5.0
#: A worker silent for this long is considered gone.
ALIVE_WINDOW_S = 30.0


class WorkerHeartbeat(Middleware):
    def __init__(self, *, client: redis.Redis, interval_s: float = INTERVAL_S) -> None:
        self.client = client
        self.interval_s = interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.processed: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._stop = threading.Event()
        self._info: dict[str, Any] = {}
        self._broker_heartbeats: tuple[str, str] | None = None
        self._broker: dramatiq.Broker | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._broker = broker
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._info = {
            "worker": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": [q for q in queues if not q.endswith(".DQ")],
            "threads": worker.worker_threads,
            "started_at": int(time.time() * 1000),
        }
        namespace, broker_id = (
            getattr(broker, "namespace", None),
            getattr(broker, "broker_id", None),
        )
        if namespace and broker_id:
            # Dramatiq's consumers only heartbeat when they fetch, and a consumer whose prefetch
            # is full (long jobs, a backlog) does not fetch: broker maintenance would then take a
            # busy, living worker for dead and re-queue its messages. Beating from this thread
            # ties "alive" to the process, so only a dead process loses its messages.
            self._broker_heartbeats = (f"{namespace}:__heartbeats__", broker_id)
            # Three beats per timeout: a beat that runs late under load is not a death.
            timeout_ms = getattr(broker, "heartbeat_timeout", None)
            if timeout_ms:
                self.interval_s = min(self.interval_s, int(timeout_ms) / 3000)
        threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True).start()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self.processed[q_name(message.queue_name)] += 1
        if exception is not None:  # retried or failed for good: an attempt that did not succeed
            self.failed[q_name(message.queue_name)] += 1

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        try:
            now, _ = self._redis_now_and_offset()
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(WORKERS_KEY, self.worker_id, json.dumps(self._report(now, stopped=True)))
            pipe.zadd(STOPPED_KEY, {self.worker_id: now})
            pipe.zrem(SEEN_KEY, self.worker_id)
            pipe.execute()
        except redis.RedisError:
            pass  # Redis gone at shutdown: the entry ages out of the alive window by itself.

    def _redis_now_and_offset(self) -> tuple[float, int]:
        """Redis server time (s) and this machine's offset from it (ms): liveness is judged on
        Redis time, so a machine with a wrong clock is neither taken for dead nor kept alive."""
        measure = getattr(self._broker, "measure_clock_offset", None)
        if measure is not None:
            offset_ms = int(measure())
        else:
            seconds, micros = self.client.time()
            offset_ms = int(time.time() * 1000) - (seconds * 1000 + micros // 1000)
        return time.time() - offset_ms / 1000, offset_ms

    def _report(self, now: float, *, offset_ms: int = 0, stopped: bool = False) -> dict[str, Any]:
        report = {
            **self._info,
            "processed": dict(self.processed),
            "failed": dict(self.failed),
            "rss_mb": round(rss_mb(), 1),
            "last_seen": int(now * 1000),
            "clock_offset_ms": offset_ms,
        }
        if stopped:
            report["stopped_at"] = int(now * 1000)
        return report

    def beat_once(self) -> None:
        now, offset_ms = self._redis_now_and_offset()
        info = self._report(now, offset_ms=offset_ms)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(WORKERS_KEY, self.worker_id, json.dumps(info))
        pipe.zadd(SEEN_KEY, {self.worker_id: now})
        if self._broker_heartbeats:
            key, broker_id = self._broker_heartbeats
            pipe.zadd(key, {broker_id: int(now * 1000)})
        # Forget workers gone for a day so the registry does not grow forever.
        pipe.zrangebyscore(SEEN_KEY, 0, now - FORGET_AFTER_S)
        pipe.zrangebyscore(STOPPED_KEY, 0, now - FORGET_AFTER_S)
        *_, silent, stopped = pipe.execute()
        if silent or stopped:
            pipe = self.client.pipeline(transaction=False)
            pipe.hdel(WORKERS_KEY, *silent, *stopped)
            if silent:
                pipe.zrem(SEEN_KEY, *silent)
            if stopped:
                pipe.zrem(STOPPED_KEY, *stopped)
            pipe.execute()

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat_once()
            except redis.RedisError:
                pass  # Redis down: the broker logs it; heartbeats resume when it is back.
            self._stop.wait(self.interval_s)


def redis_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1_000_000


def live_workers(client: redis.Redis, *, window_s: float = ALIVE_WINDOW_S) -> list[dict[str, Any]]:
    """Workers seen within the window (Redis time), newest first."""
    ids = client.zrevrangebyscore(SEEN_KEY, "+inf", redis_time(client) - window_s)
    if not ids:
        return []
    rows = client.hmget(WORKERS_KEY, ids)
    return [json.loads(row) for row in rows if row]


def gone_workers(
    client: redis.Redis, *, within_s: float = 3600, window_s: float = ALIVE_WINDOW_S
) -> list[dict[str, Any]]:
    """Workers gone in the last `within_s`, newest first, each with `gone`: "stopped" (a clean
    shutdown, at `stopped_at`) or "silent" (no beat for `window_s`: killed, crashed, host lost)."""
    now = redis_time(client)
    pipe = client.pipeline(transaction=False)
    pipe.zrevrangebyscore(SEEN_KEY, f"({now - window_s}", now - within_s, withscores=True)
    pipe.zrevrangebyscore(STOPPED_KEY, "+inf", now - within_s, withscores=True)
    silent, stopped = pipe.execute()
    found = [(when, member, "silent") for member, when in silent]
    found += [(when, member, "stopped") for member, when in stopped]
    found.sort(reverse=True)
    if not found:
        return []
    rows = client.hmget(WORKERS_KEY, [member for _, member, _ in found])
    return [
        {**json.loads(row), "gone": how}
        for (_, _, how), row in zip(found, rows, strict=True)
        if row
    ]
