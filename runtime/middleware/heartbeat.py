"""Worker heartbeats: which worker processes are alive, which queues they consume, what they did.

Dramatiq's own broker heartbeats are per consumer and anonymous (and producers appear in them);
this registry is per worker process, written every few seconds, and read by the API's stats route
and the metrics exporter.
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

WORKERS_KEY = "gaveurs:workers"
SEEN_KEY = "gaveurs:workers:seen"
INTERVAL_S = 5.0
#: A worker silent for this long is considered gone.
ALIVE_WINDOW_S = 30.0


class WorkerHeartbeat(Middleware):
    def __init__(self, *, client: redis.Redis, interval_s: float = INTERVAL_S) -> None:
        self.client = client
        self.interval_s = interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.processed: Counter[str] = Counter()
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

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hdel(WORKERS_KEY, self.worker_id)
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

    def beat_once(self) -> None:
        now, offset_ms = self._redis_now_and_offset()
        info = {
            **self._info,
            "processed": dict(self.processed),
            "last_seen": int(now * 1000),
            "clock_offset_ms": offset_ms,
        }
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(WORKERS_KEY, self.worker_id, json.dumps(info))
        pipe.zadd(SEEN_KEY, {self.worker_id: now})
        if self._broker_heartbeats:
            key, broker_id = self._broker_heartbeats
            pipe.zadd(key, {broker_id: int(now * 1000)})
        # Forget workers dead for a day so the registry does not grow forever.
        pipe.zrangebyscore(SEEN_KEY, 0, now - 86400)
        stale = pipe.execute()[-1]
        if stale:
            self.client.hdel(WORKERS_KEY, *stale)
            self.client.zrem(SEEN_KEY, *stale)

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
