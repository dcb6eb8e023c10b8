"""Writes every accepted job, and its end, to the database journal (domain/platform/journal.py).

Entries are buffered and written by one thread per process every `flush_ms`, so an enqueue
never waits for the database (its lock, its fsync) and a busy SQLite cannot slow the API. The
price is a window of `flush_ms`: a process that dies that soon after accepting a job leaves it
unjournaled, which matters only if Redis loses the same job (two failures at once).
Actors opt out with `journal=False` (frequent, re-derivable jobs like broker maintenance).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware
from dramatiq_abort import Abort
from sqlalchemy import Engine

from domain.platform import journal
from runtime.middleware.job_records import is_duplicate

logger = logging.getLogger("gaveurs.journal")
#: Past this many unwritten entries (database down for long), the oldest are dropped and counted.
MAX_BUFFER = 200_000
#: Log a failing flush at most this often.
COMPLAINT_S = 60.0


class Journal(Middleware):
    """With `enabled=False` (JOURNAL_ENABLED=false) it writes nothing, but stays installed: actors
    declare its `journal=` option, which Dramatiq refuses when no middleware defines it."""

    def __init__(
        self, *, engine: Callable[[], Engine], flush_ms: int = 200, enabled: bool = True
    ) -> None:
        self.engine = engine
        self.enabled = enabled
        self.flush_s = flush_ms / 1000
        self._lock = threading.Lock()
        self._accepted: list[journal.Accepted] = []
        self._finished: list[journal.Finished] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_complaint = 0.0
        self.dropped = 0
        self._wanted_by_actor: dict[str, bool] = {}

    @property
    def actor_options(self) -> set[str]:
        return {"journal"}

    def _wanted(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> bool:
        if not self.enabled:
            return False
        wanted = self._wanted_by_actor.get(message.actor_name)
        if wanted is None:
            actor = broker.get_actor(message.actor_name)
            wanted = self._wanted_by_actor[message.actor_name] = actor.options.get("journal", True)
        return bool(wanted)

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        # A retry re-enqueues a journaled job; a delayed message moved to its queue is journaled
        # already too (the insert ignores it): only first sends and resends carry new entries.
        if message.options.get("retries") or not self._wanted(broker, message):
            return
        entry = journal.Accepted(
            task_id=message.message_id,
            actor=message.actor_name,
            queue=q_name(message.queue_name),
            body=message.encode().decode(),
            accepted_at=datetime.now(UTC),
            client=message.options.get("client"),
        )
        self._push(accepted=entry)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            self._finish(broker, message, "SUCCESS")
        elif isinstance(exception, Abort):
            self._finish(broker, message, "REVOKED")
        elif message.failed:
            self._finish(broker, message, "FAILURE")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not is_duplicate(message):
            self._finish(broker, message, "FAILURE" if message.failed else "REVOKED")

    def mark_finished(self, task_id: str, actor: str, queue: str, outcome: str) -> None:
        """Also for ends decided outside a worker (a cancel of a queued job, a purge)."""
        entry = journal.Finished(task_id, actor, q_name(queue), outcome, datetime.now(UTC))
        self._push(finished=entry)

    def _finish(self, broker: dramatiq.Broker, message: MessageProxy, outcome: str) -> None:
        if self._wanted(broker, message._message):
            self.mark_finished(message.message_id, message.actor_name, message.queue_name, outcome)

    def _push(
        self,
        *,
        accepted: journal.Accepted | None = None,
        finished: journal.Finished | None = None,
    ) -> None:
        if not self.enabled:
            return
        with self._lock:
            if accepted is not None:
                self._accepted.append(accepted)
            if finished is not None:
                self._finished.append(finished)
            overflow = len(self._accepted) + len(self._finished) - MAX_BUFFER
            if overflow > 0:
                del self._accepted[:overflow]
                self.dropped += overflow
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-journal", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Write what is buffered; on failure keep it for the next try. True when all written."""
        with self._lock:
            accepted, self._accepted = self._accepted, []
            finished, self._finished = self._finished, []
        if not accepted and not finished:
            return True
        try:
            engine = self.engine()
            journal.record_accepted(engine, accepted)
            journal.record_finished(engine, finished)
        except Exception as error:  # the database away, or not migrated yet
            with self._lock:
                self._accepted[:0] = accepted
                self._finished[:0] = finished
            now = time.monotonic()
            if now - self._last_complaint > COMPLAINT_S:
                self._last_complaint = now
                logger.error(
                    "job journal not written (%s); keeping %d entries",
                    error,
                    len(accepted) + len(finished),
                )
            return False
        return True
