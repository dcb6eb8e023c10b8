"""A worker gives back the messages it fetched but no longer holds, and all of them at shutdown.

Dramatiq's Redis broker keeps every fetched message in the worker's ack set until it is acked,
and only broker maintenance, once the worker is dead, puts them back. Messages a living worker
has lost track of (its delay queue dropped on a connection loss, a fetch whose reply timed out)
would wait there as long as the worker lives. A sweeper thread returns them within two sweeps;
at shutdown, everything not acked (prefetched, or still running past the shutdown timeout)
goes back at once instead of after the heartbeat timeout. A stop signalled twice at once (a
process group signal plus Dramatiq's forwarding) is one graceful stop, not a kill.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import dramatiq
import redis
from dramatiq.middleware import Middleware

from runtime.consumer import RobustRedisBroker

SWEEP_S = 5.0
TERM_REPEAT_S = 2.0

logger = logging.getLogger("gaveurs.handover")


def _debounce_sigterm() -> None:
    """Dramatiq's worker process takes a second SIGTERM for "kill now". A PaaS (Heroku) or
    systemd signals the whole process group, and Dramatiq's main process forwards the signal:
    every stop arrives twice within milliseconds and in-flight jobs are abandoned. A repeat
    within TERM_REPEAT_S is the same stop; a later one still kills, as Dramatiq intends."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return
    first: list[float] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if first and now - first[0] < TERM_REPEAT_S:
            return
        first[:1] = [now]
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


class Handover(Middleware):
    def __init__(self, *, sweep_s: float = SWEEP_S) -> None:
        self.sweep_s = sweep_s
        self._stop = threading.Event()
        self._queues: list[str] = []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if threading.current_thread() is threading.main_thread():
            _debounce_sigterm()
        if not isinstance(broker, RobustRedisBroker):
            return
        self._queues = sorted(worker.consumers)
        threading.Thread(
            target=self._sweep, args=(broker,), name="orphan-sweeper", daemon=True
        ).start()

    def _sweep(self, broker: RobustRedisBroker) -> None:
        while not self._stop.wait(self.sweep_s):
            try:
                returned = broker.sweep_orphans(self._queues)
            except redis.RedisError:
                continue  # Redis away: the consumers notice too; sweep again when it is back
            if returned:
                logger.warning("gave back %d fetched messages this worker no longer held", returned)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RobustRedisBroker):
            return
        try:
            returned = broker.hand_back(self._queues)
        except redis.RedisError:
            logger.exception("could not give back unacked messages; broker maintenance will")
            return
        if returned:
            logger.warning("gave back %d unacknowledged messages at shutdown", returned)
