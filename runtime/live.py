"""Live results: follow one job's record as it changes, told by Redis pub/sub, not by polling.

Every transition and progress write of a job record publishes on the job's channel from inside
the script that writes it (lua/transition_fn.lua, lua/progress.lua): one PUBLISH, no extra round
trip. Followers subscribe, read the record, and read it again only when told it changed (or
every `KEEPALIVE_S`, which also covers a notice lost in a reconnect).

- `follow` is the synchronous follower (`gaveurs enqueue --wait`): one subscription.
- `RecordEvents` is the fan-out of a web process: one pub/sub connection for every
  `GET /api/tasks/{id}/events` stream it serves, subscribed per followed job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator

import redis
import redis.asyncio

from domain.platform.settings import Settings
from runtime.connections import async_redis_client
from runtime.job_records import JobRecord, JobRecords
from runtime.outage import REDIS_ERRORS

logger = logging.getLogger("gaveurs.live")
#: With no notice for this long, a follower reads the record anyway (and an SSE stream sends a
#: comment, so proxies keep the connection open).
KEEPALIVE_S = 15.0
#: Notices a slow stream may have waiting; more are dropped (the stream re-reads the record).
QUEUE_SIZE = 64


def follow(
    records: JobRecords, task_id: str, *, timeout_s: float, keepalive_s: float = KEEPALIVE_S
) -> Iterator[JobRecord | None]:
    """The record now, then after each change, until it is final or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    pubsub = records.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(records.channel(task_id))
    try:
        while True:
            record = records.get(task_id)
            yield record
            if record is not None and not record.active:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            pubsub.get_message(timeout=min(left, keepalive_s))
            # A burst of progress notices is one re-read: drain what has already arrived.
            while pubsub.get_message(timeout=0) is not None:
                pass
    finally:
        pubsub.close()


class RecordEvents:
    """One pub/sub connection shared by every stream of this process (and event loop)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._pubsub: redis.asyncio.client.PubSub | None = None
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of the notices published on `channel` while the context is open."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_SIZE)
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            listeners = self._queues.get(channel)
            if not listeners:
                await self._pubsub.subscribe(channel)  # Redis down: raises, nothing kept
                listeners = self._queues[channel] = set()
            listeners.add(queue)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="record-events")
        try:
            yield queue
        finally:
            async with self._lock:
                listeners = self._queues.get(channel, set())
                listeners.discard(queue)
                if not listeners:
                    self._queues.pop(channel, None)
                    with contextlib.suppress(*REDIS_ERRORS):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            async with self._lock:
                if not self._queues:
                    self._reader = None
                    return
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except REDIS_ERRORS as error:  # streams re-read on their keepalive; reconnect here
                logger.warning("live results: Redis unreachable (%s)", error)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            for queue in list(self._queues.get(channel, ())):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(message["data"].decode())


_hubs: dict[tuple[int, str, str, str], tuple[asyncio.AbstractEventLoop, RecordEvents]] = {}


def record_events(settings: Settings) -> RecordEvents:
    """The fan-out of the running event loop for the settings' Redis (one per loop: its
    connection belongs to it; the loop is kept with it so its id is never another loop's)."""
    loop = asyncio.get_running_loop()
    where = (id(loop), settings.redis_url, settings.redis_sentinels, settings.redis_sentinel_master)
    found = _hubs.get(where)
    if found is None or found[0] is not loop:
        found = _hubs[where] = (loop, RecordEvents(async_redis_client(settings)))
    return found[1]
