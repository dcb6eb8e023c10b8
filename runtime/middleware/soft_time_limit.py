"""A soft time limit that long jobs can catch to stop early and keep their best result so far.

At the deadline the job's thread gets `SoftTimeLimitExceeded` raised asynchronously (like
Dramatiq's hard TimeLimit); loops inside C extensions that never return to Python can instead
poll `soft_limit_reached()` between iterations. The hard `time_limit` still applies afterwards.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Interrupt, Middleware, raise_thread_exception

#: How often the watcher looks at deadlines; the soft limit is honoured within this delay.
CHECK_INTERVAL_S = 0.1


class SoftTimeLimitExceeded(Interrupt):
    """The job ran past its soft time limit: wrap up and return what you have."""


class SoftTimeLimit(Middleware):
    """Honours the `soft_time_limit` actor option (milliseconds)."""

    def __init__(self) -> None:
        self._deadlines: dict[int, float] = {}
        self._expired: set[int] = set()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def actor_options(self) -> set[str]:
        return {"soft_time_limit"}

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self._watcher = threading.Thread(target=self._watch, name="soft-time-limit", daemon=True)
        self._watcher.start()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        actor = broker.get_actor(message.actor_name)
        limit_ms = message.options.get("soft_time_limit") or actor.options.get("soft_time_limit")
        thread_id = threading.get_ident()
        with self._lock:
            self._expired.discard(thread_id)
            if limit_ms:
                self._deadlines[thread_id] = time.monotonic() + limit_ms / 1000

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        thread_id = threading.get_ident()
        with self._lock:
            self._deadlines.pop(thread_id, None)
            self._expired.discard(thread_id)

    after_skip_message = after_process_message

    def reached(self, thread_id: int | None = None) -> bool:
        """True once the current job's soft limit has passed."""
        thread_id = threading.get_ident() if thread_id is None else thread_id
        with self._lock:
            if thread_id in self._expired:
                return True
            deadline = self._deadlines.get(thread_id)
        return deadline is not None and time.monotonic() >= deadline

    def _watch(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                due = [tid for tid, deadline in self._deadlines.items() if deadline <= now]
                for thread_id in due:
                    del self._deadlines[thread_id]
                    self._expired.add(thread_id)
            for thread_id in due:
                raise_thread_exception(thread_id, SoftTimeLimitExceeded)
            time.sleep(CHECK_INTERVAL_S)
