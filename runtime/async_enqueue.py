"""The API's enqueue on the event loop: redis.asyncio, no thread-pool hop, the same record and
message script as the sync path (lua/enqueue.lua through `RobustRedisBroker.prepare_enqueue` and
`take_pending`, so every before/after_enqueue hook runs as it does there).

- A plain job (no uniqueness key, no Idempotency-Key) is sent here: build the message, run the
  before_enqueue hooks, await the one script call, run the after_enqueue hooks (journal,
  metrics).
- A unique job, an Idempotency-Key or an outbox already deferring take the sync path
  (`Outbox.submit`) in a thread: their claims wait and retry, and deferred order must hold.
- Redis is awaited for at most `API_ENQUEUE_TIMEOUT_S`: a stalled Redis costs each request that
  long, never the event loop. Past it, or on a connection error, the job is deferred to the
  database journal as on the sync path (with the message already sent, so that if Redis runs it
  after all, the forwarder finds its record and does not send it twice), or, deferral off,
  the Redis error becomes the API's 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import weakref
from typing import Any, NamedTuple, Unpack

import dramatiq
import hiredis
import redis
import redis.asyncio
from pydantic import BaseModel
from redis.exceptions import NoScriptError

from runtime.build import Runtime, current
from runtime.connections import async_redis_client
from runtime.context import outbox
from runtime.deferred import Outbox, SubmitOptions
from runtime.job_records import JobRecord
from runtime.jobs import Job, Submitted, callback_option
from runtime.outage import REDIS_ERRORS

#: A deadline timer that fires this late (s) says the event loop itself was held up (a long
#: synchronous call, a starved process), not Redis: answers may be waiting unread in the socket.
LATE_S = 0.05
#: How long the reader then gets to take them before the owed commands fail (s).
GRACE_S = 0.01


class _Owed(NamedTuple):
    """An answer owed on a pipe: who waits for it, until when, and what it is (for the error)."""

    future: asyncio.Future[Any]
    deadline: float
    what: str


class _Pipe:
    """One connection and the answers owed on it, in the order the commands were written.

    The oldest owed answer bounds them all (Redis answers in order): past its deadline the
    pipe is closed, failing every command it owes with a TimeoutError that names the oldest,
    and the next command opens another connection (a stalled or demoted master is left). One
    timer per pipe, not one per command."""

    def __init__(self, connection: Any, *, timeout_s: float) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self.outgoing: list[bytes] = []
        self.waiting: collections.deque[_Owed] = collections.deque()
        self.error: BaseException | None = None
        self._writing = False
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: The owed answer whose deadline was met by a late loop once already (GRACE_S given).
        self._graced: _Owed | None = None

    def send(self, packed: bytes, *, deadline: float, what: str) -> asyncio.Future[Any]:
        """The answer to `packed`, written with the other commands of this pass of the loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.error is not None:
            future.set_exception(_lost(self.error))
            return future
        self.outgoing.append(packed)
        self.waiting.append(_Owed(future, deadline, what))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        if not self._writing:
            self._writing = True
            loop.call_soon(self._write_soon)
        return future

    def _expire(self) -> None:
        self._timer = None
        if self.error is not None or not self.waiting:
            return
        loop = asyncio.get_running_loop()
        oldest, now = self.waiting[0], loop.time()
        if oldest.deadline > now:
            self._timer = loop.call_at(oldest.deadline, self._expire)
        elif now - oldest.deadline >= LATE_S and oldest is not self._graced:
            # The loop comes back late: the answers that came meanwhile are read first (a timer
            # can run before the reader in the pass that follows a held-up loop).
            self._graced = oldest
            self._timer = loop.call_later(GRACE_S, self._expire)
        else:
            self.close(
                redis.TimeoutError(
                    f"Redis did not answer {oldest.what} within {self.timeout_s:g} s"
                )
            )

    def _write_soon(self) -> None:
        # Called once the commands issued in this pass of the loop are queued: one write.
        _spawn(self._write())

    async def _write(self) -> None:
        try:
            while self.outgoing and self.error is None:
                commands, self.outgoing = self.outgoing, []
                # No health-check PING: its answer would land among the pipelined ones.
                await self.connection.send_packed_command(commands, check_health=False)
                if self._reader is None:
                    self._reader = _spawn(self._read())
        except BaseException as error:
            self.close(error)
        finally:
            self._writing = False

    async def _read(self) -> None:
        try:
            while self.error is None:
                try:
                    # No read timeout here: the oldest owed answer's deadline closes the pipe.
                    answer = await self.connection.read_response(timeout=math.inf)
                except redis.ResponseError as error:  # this command's error, not the pipe's
                    self._answer(error)
                    continue
                self._answer(answer)
        except BaseException as error:
            self.close(error)

    def _answer(self, answer: Any) -> None:
        if not self.waiting:
            raise redis.ConnectionError("Redis answered a command nobody sent on this connection")
        future = self.waiting.popleft().future
        if future.done():  # its caller gave up (cancelled); the order still holds
            return
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)

    def close(self, error: BaseException) -> None:
        """Every owed answer fails as a connection loss; the connection is dropped."""
        if self.error is not None:
            return
        self.error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():
                future.set_exception(_lost(error))
        self.outgoing.clear()
        _spawn(self.connection.disconnect(nowait=True))


def _lost(error: BaseException) -> BaseException:
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return error
    return redis.ConnectionError(f"connection to Redis lost ({type(error).__name__}: {error})")


#: Tasks of the pipes (writer, reader, disconnect), held until done: the loop keeps only weak
#: references to tasks.
_tasks: set[asyncio.Task[Any]] = set()


def _spawn(coroutine: Any) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


class LoopScripts:
    """Commands run on one connection of this event loop's own, pipelined, without
    redis.asyncio's client: its command path (pool lock, retry wrapper, response callbacks, a
    timeout task per send and per read) cost more than the enqueue's own work. The commands the
    loop's requests issue in one pass go out in one write, and one reader hands the answers back
    in order, so concurrent enqueues share their system calls. Like runtime/direct.py for
    threads, the connection has the client's settings (TLS, ACL user, Sentinel's master).

    Each command is answered within `timeout_s` (API_ENQUEUE_TIMEOUT_S) or fails with a
    redis.TimeoutError: a stalled Redis costs each request that long, never the event loop. A
    connection error, or that timeout, fails every command owed on the connection (each caller
    then defers or answers 503, as before) and the next command opens a new connection."""

    def __init__(self, client: redis.asyncio.Redis, *, timeout_s: float) -> None:
        pool = client.connection_pool
        self._open = functools.partial(pool.connection_class, **pool.connection_kwargs)
        self.timeout_s = timeout_s
        self._pipe: _Pipe | None = None
        self._opening = asyncio.Lock()

    async def run(self, script: Any, keys: list[Any], args: list[Any], *, what: str) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        return await self.call(*command, script=script, what=what)

    async def call(
        self, *command: Any, script: Any = None, what: str = "a command", deadline: float = 0.0
    ) -> Any:
        """One command's answer; with `script`, an EVALSHA that loads it if Redis lacks it (the
        reload within the same bound)."""
        deadline = deadline or asyncio.get_running_loop().time() + self.timeout_s
        pipe = self._pipe
        if pipe is None or pipe.error is not None:
            pipe = await self._connected(deadline, what)
        try:
            return await pipe.send(hiredis.pack_command(command), deadline=deadline, what=what)
        except NoScriptError:
            if script is None:
                raise
            loaded = await self.call("SCRIPT", "LOAD", script.script, what=what, deadline=deadline)
            script.sha = loaded.decode()
            return await self.call(
                "EVALSHA", script.sha, *command[2:], what=what, deadline=deadline
            )

    async def _connected(self, deadline: float, what: str) -> _Pipe:
        try:
            async with asyncio.timeout_at(deadline), self._opening:
                pipe = self._pipe
                if pipe is None or pipe.error is not None:
                    connection = self._open()
                    # Connected here: a Sentinel-managed connection asks the Sentinels for the
                    # master in its own connect().
                    try:
                        await connection.connect()
                    except BaseException:
                        await connection.disconnect(nowait=True)
                        raise
                    pipe = self._pipe = _Pipe(connection, timeout_s=self.timeout_s)
                return pipe
        except TimeoutError:
            raise redis.TimeoutError(
                f"Redis did not answer {what} within {self.timeout_s:g} s"
            ) from None


class AsyncOutbox:
    """The enqueue path of a web process's event loop, beside its (sync) Outbox."""

    def __init__(self, sync: Outbox, *, client: redis.asyncio.Redis, timeout_s: float) -> None:
        self.sync = sync
        self.client = client
        self.timeout_s = timeout_s
        self._scripts = LoopScripts(client, timeout_s=timeout_s)
        self._script = client.register_script(sync.records.enqueue_script)
        #: The runtime `async_outbox` last found this outbox right for.
        self.runtime: Runtime | None = None

    async def submit(
        self, job: Job[Any], payload: BaseModel, **options: Unpack[SubmitOptions]
    ) -> Submitted:
        delay_ms, callback_url = options.get("delay_ms"), options.get("callback_url")
        message = job.message(
            payload, priority_class=options.get("priority_class"), **callback_option(callback_url)
        )
        unique = "unique_key" in message.options
        if self.sync.deferring or options.get("idempotency_key") is not None or unique:
            run = functools.partial(self.sync.submit, job, payload, **options)
            return await asyncio.to_thread(run)
        try:
            return await self.send(message, delay_ms=delay_ms)
        except REDIS_ERRORS as error:
            self.sync.redis_failed(job, error)
        defer = functools.partial(self.sync.defer_or_fail, job, payload, message=message, **options)
        return await asyncio.to_thread(defer)

    async def send(self, message: dramatiq.Message[Any], *, delay_ms: int | None) -> Submitted:
        broker = self.sync.broker
        sent, queue_name, data = broker.prepare_enqueue(message, delay=delay_ms)
        redis_id = sent.options["redis_message_id"]
        keys, record = broker.take_pending(queue_name, redis_id)
        assert record is not None, "JobTracking creates the record with the message on our broker"
        keys, args = self.sync.records.enqueue_call(keys, [redis_id, data], record)
        await self._scripts.run(self._script, keys, args, what="the enqueue")
        broker.emit_after("enqueue", sent, delay_ms)
        return Submitted(sent.message_id)

    async def record(self, task_id: str) -> JobRecord | None:
        """A job's record, read on the event loop within the same timeout (the status route,
        which clients poll: no thread-pool hop either)."""
        key = self.sync.records.key(task_id)
        fields = await self._scripts.call("HGETALL", key, what="a status read")
        if not fields:
            return None
        if not isinstance(fields, dict):  # RESP2's flat list; RESP3 answers a map
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        return JobRecord.from_hash(task_id, fields)


#: One per event loop (a redis.asyncio connection belongs to the loop that opened it).
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOutbox] = (
    weakref.WeakKeyDictionary()
)


def async_outbox() -> AsyncOutbox:
    """The async enqueue path of the running event loop, for the runtime `setup` built."""
    loop = asyncio.get_running_loop()
    now = current()
    found = _by_loop.get(loop)
    if found is not None and found.runtime is now:
        return found  # `outbox()` looks the broker's middleware up: once per runtime, not per call
    sync = outbox()
    if found is None or found.sync is not sync:
        # The same builder as every client: Sentinel's master, READONLY as a connection loss.
        client = async_redis_client(now.settings)
        found = _by_loop[loop] = AsyncOutbox(
            sync, client=client, timeout_s=now.settings.api_enqueue_timeout_s
        )
    found.runtime = now
    return found
