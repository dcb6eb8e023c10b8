"""Job-record writes of concurrent threads, sent to Redis together (flat combining).

Every job costs two record writes: STARTED before it runs, its end with its ack. Each was a round
trip, a redis-py call and a script call, under the GIL the worker threads share: with a no-op
job, two thirds of a worker's Redis calls. Here a write made while another thread's is in flight
waits in a queue; when that call returns, the first waiting thread takes the lead and sends every
queued write in one call of lua/batch.lua. No write waits behind more than one call, a lone write
goes through its own script as before, and under load the writes of several jobs share a call.

Each writer gets its own reply or error, as if it had called alone. A write may have several parts
(`run_parts`: a job's end and the next job's STARTED) that go in the same call, each applied as
its own script would; its reply is theirs, in order. A batch Redis refuses (an
error in one write) is replayed one write at a time; replaying is safe because every write is
idempotent (a STARTED carries its delivery token, an ack of an acked message does nothing).
A thread interrupted while it leads (a cancel or a time limit raised into it) still hands the
lead on; the writes it was sending fail with a connection error, which their callers retry.

Far from Redis (a round trip of milliseconds), a write that waits for the call in flight waits
most of a round trip before its own call even leaves. When even the fastest recent calls took
OVERLAP_S or more (Redis is far, not merely busy: on a loaded machine some calls are slow, never
all), a write does not wait for a call that has been out OVERLAP_S: it leads another, with
whatever is queued, when it is made or once it has waited OVERLAP_S itself (at most
MAX_IN_FLIGHT calls at a time). Near Redis batching is as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from runtime.direct import ThreadScripts

#: Writes sent in one call at most (a script runs alone in Redis: keep each call short).
MAX_BATCH = 32
#: Calls in flight at once at most, and how long the last one must have been out before a write
#: leads another instead of waiting for it (a few times a call's time near Redis).
MAX_IN_FLIGHT = 4
OVERLAP_S = 0.002
#: How fast the estimate of the fastest recent call forgets (it grows by this factor a call).
FLOOR_GROWTH = 1.05
#: A write's states: in the queue, leading a call, in a call another thread leads, done.
_QUEUED, _LEAD, _SENT, _SERVED = 0, 1, 2, 3


#: One script call of a write: its kind ("transition" or "settle"), script, keys and arguments.
Part = tuple[str, Script, Sequence[Any], Sequence[Any]]


class _Write:
    __slots__ = ("parts", "wake", "state", "reply", "error", "handed")

    def __init__(self, parts: Sequence[Part]):
        self.parts = parts
        self.wake = threading.Lock()
        self.wake.acquire()
        self.state = _QUEUED
        self.reply: Any = None
        self.error: BaseException | None = None
        self.handed = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.reply


class WriteBatcher:
    """Runs `kind` writes ("transition" or "settle", see lua/batch.lua) for many threads."""

    def __init__(
        self,
        scripts: ThreadScripts,
        batch: Script,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ):
        self.scripts = scripts
        self.batch = batch
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        #: Writes waiting for a lead (a lead is taken off it when it is made one).
        self._queue: list[_Write] = []
        self._in_flight = 0
        self._last_sent = 0.0
        #: About the fastest of the recent calls (s): the round trip to Redis, without the waits
        #: of a loaded machine. Unknown (infinite) until a call returns.
        self.floor_s = float("inf")
        #: Calls sent and writes they carried, since start (the benchmark reports the ratio),
        #: and the most calls that were in flight at once.
        self.calls = 0
        self.writes = 0
        self.peak_in_flight = 0

    def run(self, kind: str, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self._run(_Write(((kind, script, keys, args),)))[0]

    def run_parts(self, parts: Sequence[Part]) -> list[Any]:
        """Several writes of this thread in one call: each part's reply, or the ResponseError
        Redis gave that part alone (a connection error raises, as `run`'s do)."""
        return self._run(_Write(parts))

    def _run(self, me: _Write) -> list[Any]:
        """The replies of `me`'s parts, in order."""
        try:
            with self._lock:
                if self._in_flight == 0 or self._overlap():
                    self._in_flight, me.state = self._in_flight + 1, _LEAD
                    self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                else:
                    self._queue.append(me)
            if me.state == _QUEUED:
                self._wait(me)
            if me.state == _LEAD:
                self._lead(me)
        except BaseException:  # raised into this thread: never leave the queue leaderless
            with self._lock:
                if me.state == _QUEUED and me in self._queue:
                    self._queue.remove(me)
            if me.state == _LEAD and not me.handed:
                self._lead(me)
            raise
        return me.outcome()

    def _overlap(self) -> bool:
        """Whether a write may lead a call now, though calls are in flight (under the lock)."""
        return (
            self.floor_s >= OVERLAP_S
            and self._in_flight < self.max_in_flight
            and time.monotonic() - self._last_sent >= OVERLAP_S
        )

    def _wait(self, me: _Write) -> None:
        """Wait until `me` is served or handed the lead; past OVERLAP_S in the queue (the calls in
        flight are slow: Redis is far), take the lead of a call of its own when one may leave."""
        # Near Redis it only waits (waking to look would cost the GIL the worker threads share).
        while not me.wake.acquire(timeout=OVERLAP_S if self.floor_s >= OVERLAP_S else -1):
            with self._lock:
                if me.state == _QUEUED and self._overlap():
                    self._queue.remove(me)
                    self._in_flight, me.state = self._in_flight + 1, _LEAD
                    self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                    return
            # Otherwise keep waiting (served or handed the lead meanwhile: its release comes).

    def _lead(self, me: _Write) -> None:
        """Send `me` and the queued writes, then hand the lead to the next queued one."""
        with self._lock:
            batch = [me, *self._queue[: self.max_batch - 1]]
            del self._queue[: self.max_batch - 1]
            for write in batch[1:]:
                write.state = _SENT  # out of the queue: it may no longer lead a call of its own
            self._last_sent = sent = time.monotonic()
        try:
            self._send(batch)
        except BaseException as error:  # raised into this thread: the others may retry
            lost = redis.ConnectionError(f"record write interrupted ({type(error).__name__})")
            for write in batch:
                if write.reply is None and write.error is None:
                    write.error = error if write is me else lost
            raise
        finally:
            with self._lock:
                took = time.monotonic() - sent
                self.floor_s = min(self.floor_s * FLOOR_GROWTH, took)
                successor = self._queue.pop(0) if self._queue else None
                if successor is None:
                    self._in_flight -= 1
                else:
                    successor.state = _LEAD  # this call's place in flight is its now
            for write in batch:
                write.state = _SERVED
                if write is not me:
                    write.wake.release()
            me.handed = True
            if successor is not None:
                successor.wake.release()

    def _send(self, batch: list[_Write]) -> None:
        self.calls += 1
        self.writes += len(batch)
        if len(batch) == 1 and len(batch[0].parts) == 1:
            self._send_one(batch[0])
            return
        keys: list[Any] = []
        argv: list[Any] = []
        for write in batch:
            for kind, _, part_keys, args in write.parts:
                keys.extend(part_keys)
                argv.extend((kind, len(part_keys), len(args), *args))
        try:
            replies = iter(self.scripts.run(self.batch, keys, argv))
        except redis.ResponseError:
            for write in batch:  # find whose write Redis refuses; the others apply (again)
                self._send_one(write)
            return
        except redis.RedisError as error:
            for write in batch:  # each thread raises its own copy (tracebacks are per raise)
                write.error = type(error)(*error.args)
            return
        for write in batch:
            write.reply = [next(replies) for _ in write.parts]

    def _send_one(self, write: _Write) -> None:
        """`write` alone, each part with its own script; Redis refusing a lone part is its
        writer's error, one of several parts is that part's reply."""
        replies: list[Any] = []
        for _, script, keys, args in write.parts:
            try:
                replies.append(self.scripts.run(script, keys, args))
            except redis.ResponseError as error:
                if len(write.parts) == 1:
                    write.error = error
                    return
                replies.append(error)
            except redis.RedisError as error:
                write.error = error
                return
        write.reply = replies
