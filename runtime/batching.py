"""Job-record writes of concurrent threads, sent to Redis together (flat combining).

Every job costs two record writes: STARTED before it runs, its end with its ack. Each was a round
trip, a redis-py call and a script call, under the GIL the worker threads share: with a no-op
job, two thirds of a worker's Redis calls. Here a write made while another thread's is in flight
waits in a queue; when that call returns, the first waiting thread takes the lead and sends every
queued write in one call of lua/batch.lua. No write waits behind more than one call, a lone write
goes through its own script as before, and under load the writes of several jobs share a call.

Each writer gets its own reply or error, as if it had called alone. A batch Redis refuses (an
error in one write) is replayed one write at a time; replaying is safe because every write is
idempotent (a STARTED carries its delivery token, an ack of an acked message does nothing).
A thread interrupted while it leads (a cancel or a time limit raised into it) still hands the
lead on; the writes it was sending fail with a connection error, which their callers retry.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from runtime.direct import ThreadScripts

#: Writes sent in one call at most (a script runs alone in Redis: keep each call short).
MAX_BATCH = 32
_QUEUED, _LEAD, _SERVED = 0, 1, 2


class _Write:
    __slots__ = ("kind", "script", "keys", "args", "wake", "state", "reply", "error", "handed")

    def __init__(self, kind: str, script: Script, keys: Sequence[Any], args: Sequence[Any]):
        self.kind, self.script, self.keys, self.args = kind, script, keys, args
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

    def __init__(self, scripts: ThreadScripts, batch: Script, *, max_batch: int = MAX_BATCH):
        self.scripts = scripts
        self.batch = batch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._busy = False
        #: Calls sent and writes they carried, since start (the benchmark reports the ratio).
        self.calls = 0
        self.writes = 0

    def run(self, kind: str, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        me = _Write(kind, script, keys, args)
        try:
            with self._lock:
                self._queue.append(me)
                if not self._busy:
                    self._busy, me.state = True, _LEAD
            if me.state == _QUEUED:
                me.wake.acquire()  # released once served, or handed the lead
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

    def _lead(self, me: _Write) -> None:
        """Send the queued writes (`me` first), then hand the lead to the next queued one."""
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
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
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.state = _LEAD
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
        if len(batch) == 1:
            self._send_one(batch[0])
            return
        keys: list[Any] = []
        argv: list[Any] = []
        for write in batch:
            keys.extend(write.keys)
            argv.extend((write.kind, len(write.keys), len(write.args), *write.args))
        try:
            replies = self.scripts.run(self.batch, keys, argv)
        except redis.ResponseError:
            for write in batch:  # find whose write Redis refuses; the others apply (again)
                self._send_one(write)
            return
        except redis.RedisError as error:
            for write in batch:  # each thread raises its own copy (tracebacks are per raise)
                write.error = type(error)(*error.args)
            return
        for write, reply in zip(batch, replies, strict=True):
            write.reply = reply

    def _send_one(self, write: _Write) -> None:
        try:
            write.reply = self.scripts.run(write.script, write.keys, write.args)
        except redis.RedisError as error:
            write.error = error
