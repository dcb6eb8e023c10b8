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
import functools
import weakref
from collections.abc import Awaitable
from typing import Any, Unpack

import dramatiq
import hiredis
import redis
import redis.asyncio
from pydantic import BaseModel
from redis.exceptions import NoScriptError

from runtime.build import current
from runtime.connections import async_redis_client
from runtime.context import outbox
from runtime.deferred import Outbox, SubmitOptions
from runtime.job_records import JobRecord
from runtime.jobs import Job, Submitted, callback_option
from runtime.outage import REDIS_ERRORS

#: Idle connections a loop keeps for its enqueues (more are opened under load, then closed).
IDLE_CONNECTIONS = 32


class LoopScripts:
    """Scripts run on connections of this event loop's own, without redis.asyncio's client:
    its command path (pool lock, retry wrapper, response callbacks) cost more than the enqueue's
    own work. Like runtime/direct.py for threads: the same connection settings (TLS, ACL user,
    timeouts), one send and one read; a connection that failed or was cancelled is dropped."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        pool = client.connection_pool
        self._open = functools.partial(pool.connection_class, **pool.connection_kwargs)
        self._idle: list[Any] = []

    async def run(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        return await self.call("EVALSHA", script.sha, len(keys), *keys, *args, script=script)

    async def call(self, *command: Any, script: Any = None) -> Any:
        """One command's answer; with `script`, an EVALSHA that loads it if Redis lacks it."""
        connection = self._idle.pop() if self._idle else self._open()
        try:
            try:
                # Connected here, not by send_command: a Sentinel-managed connection asks the
                # Sentinels for the master in its own connect().
                await connection.connect()
                await self._send(connection, *command)
                answer = await connection.read_response()
            except NoScriptError:
                if script is None:
                    raise
                await self._send(connection, "SCRIPT", "LOAD", script.script)
                script.sha = (await connection.read_response()).decode()
                await self._send(connection, "EVALSHA", script.sha, *command[2:])
                answer = await connection.read_response()
        except redis.ResponseError:
            self._idle.append(connection)  # the script's own error: the connection is fine
            raise
        except BaseException:  # a connection error, a timeout, a cancel: mid-command, dropped
            await connection.disconnect(nowait=True)
            raise
        if len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append(connection)
        else:
            await connection.disconnect()
        return answer

    @staticmethod
    async def _send(connection: Any, *args: Any) -> None:
        """`send_command` packed by hiredis (C): redis.asyncio packs in Python, growing its buffer
        argument by argument, several times the cost for a record's many fields."""
        await connection.send_packed_command(hiredis.pack_command(args))


class AsyncOutbox:
    """The enqueue path of a web process's event loop, beside its (sync) Outbox."""

    def __init__(self, sync: Outbox, *, client: redis.asyncio.Redis, timeout_s: float) -> None:
        self.sync = sync
        self.client = client
        self.timeout_s = timeout_s
        self._scripts = LoopScripts(client)
        self._script = client.register_script(sync.records.enqueue_script)

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
        await self._bounded("the enqueue", self._scripts.run(self._script, keys, args))
        broker.emit_after("enqueue", sent, delay_ms)
        return Submitted(sent.message_id)

    async def record(self, task_id: str) -> JobRecord | None:
        """A job's record, read on the event loop within the same timeout (the status route,
        which clients poll: no thread-pool hop either)."""
        read = self._scripts.call("HGETALL", self.sync.records.key(task_id))
        fields = await self._bounded("a status read", read)
        if not fields:
            return None
        if not isinstance(fields, dict):  # RESP2's flat list; RESP3 answers a map
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        return JobRecord.from_hash(task_id, fields)

    async def _bounded(self, what: str, call: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call
        except TimeoutError:
            raise redis.TimeoutError(
                f"Redis did not answer {what} within {self.timeout_s:g} s"
            ) from None


#: One per event loop (a redis.asyncio connection belongs to the loop that opened it).
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOutbox] = (
    weakref.WeakKeyDictionary()
)


def async_outbox() -> AsyncOutbox:
    """The async enqueue path of the running event loop, for the runtime `setup` built."""
    loop = asyncio.get_running_loop()
    sync = outbox()
    found = _by_loop.get(loop)
    if found is None or found.sync is not sync:
        settings = current().settings
        # The same builder as every client: Sentinel's master, READONLY as a connection loss.
        client = async_redis_client(settings)
        found = _by_loop[loop] = AsyncOutbox(
            sync, client=client, timeout_s=settings.api_enqueue_timeout_s
        )
    return found
