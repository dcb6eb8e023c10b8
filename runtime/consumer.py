"""Dramatiq's Redis broker with the consumer failure modes fixed. Built by runtime/build.py only.

What the stock consumer gets wrong, and what this one does instead:
- A body that cannot be decoded raises out of the consumer (Dramatiq's fetch returns bodies
  without their ids): the consumer is rebuilt and the rest of its fetched batch stays in its ack
  set, stuck while the worker lives. Here each message comes with its id: a malformed one is
  dead-lettered with its reason and the good ones fetched with it run.
- Any body is shipped into the worker's memory, 10 MB or 1 GB. Here the fetch script
  dead-letters bodies above `max_message_bytes` inside Redis; producers refuse them too.
- redis-py's TimeoutError is not a ConnectionError, so a stalled Redis is treated as a bug
  (Dramatiq issue 894): acks are given up and fetched messages lost until a restart. Here both
  map to ConnectionClosed, which the worker retries until Redis answers.
- Every broker call stamps Dramatiq's heartbeat set with the caller's clock, and maintenance
  compares those stamps with its own clock: a machine whose clock runs 60 s ahead sees every
  other worker as dead and re-queues what they are running. Here timestamps are Redis server
  time, learnt as an offset (`clock_offset_ms`, also reported for the clock-skew alert).
- After a connection loss the worker drops its in-memory delay queue while those messages sit in
  its ack set; a living worker's ack set is never recovered (Dramatiq issue 527: delayed and
  retrying jobs stuck after a Redis restart). Here every process knows which fetched messages it
  still holds (`holdings`); `sweep_orphans` gives back those it no longer holds, and
  `hand_back` returns everything unacknowledged when the worker shuts down.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis, dq_name, q_name
from dramatiq.errors import ActorNotFound, ConnectionClosed, DecodeError

from domain.errors import InvalidInput
from runtime.direct import ThreadScripts
from runtime.hooks import SelectiveEmit
from runtime.job_records import JobRecords
from runtime.outage import REDIS_ERRORS
from runtime.prestart import PRESTARTED, Prestart
from runtime.priorities import OPTION as CLASS_OPTION
from runtime.priorities import PriorityClass, list_key, list_keys
from runtime.proxy import FetchedMessage
from runtime.scripts import lua
from runtime.wake import Slots, moving_delayed, wait_for_message, wake_key

#: Attribute of a MessageProxy holding its job record's end, written with its ack (JobTracking).
SETTLE = "_gaveurs_settle"
#: How often a process re-measures its clock against Redis's.
OFFSET_REFRESH_S = 60.0


class MessageTooLarge(InvalidInput):
    """An encoded message is larger than the broker accepts."""


@dataclass(frozen=True)
class Rejected:
    """A fetched message that cannot run: dead-lettered with this reason, never processed."""

    queue: str
    redis_id: str
    message_id: str
    actor_name: str
    error_type: str
    reason: str


class Holdings:
    """The fetched messages (Redis ids, per queue) this process is still responsible for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}

    def add(self, queue: str, ids: Iterable[str]) -> None:
        with self._lock:
            self._held.setdefault(queue, set()).update(ids)

    def discard(self, queue: str, ids: Iterable[str]) -> None:
        with self._lock:
            self._held.get(queue, set()).difference_update(ids)

    def clear(self, queue: str) -> None:
        with self._lock:
            self._held.pop(queue, None)

    def of(self, queue: str) -> set[str]:
        with self._lock:
            return set(self._held.get(queue, ()))


class RobustRedisBroker(SelectiveEmit, RedisBroker):
    def __init__(
        self,
        *,
        max_message_bytes: int,
        records: JobRecords | None = None,
        on_rejected: Callable[[Rejected], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.records = records
        self.max_message_bytes = max_message_bytes
        self.on_rejected = on_rejected
        self.holdings = Holdings()
        self._pending_records = threading.local()
        self._pending_class = threading.local()
        #: The job record's end for the ack or nack this thread is making (`settling.end`).
        self.settling = threading.local()
        self._suspects: dict[str, set[str]] = {}
        self._settle_keys: dict[str, tuple[str, ...]] = {}
        #: This machine's clock minus Redis's (ms), measured every OFFSET_REFRESH_S.
        self.clock_offset_ms = 0
        #: The STARTED transition of a job a worker thread turns to, or None when it must wait
        #: for the job's own before-hooks (set by JobTracking in a worker: runtime/prestart.py).
        self.prestart: Callable[[MessageProxy], list[Any] | None] | None = None
        self._offset_measured_at = -math.inf
        self.fetch_script = self.client.register_script(lua("fetch"))
        #: The fetch runs on a connection of the consumer thread's own (runtime/direct.py).
        self.thread_scripts = ThreadScripts(self.client, replace_closed=True)
        self.requeue_script = self.client.register_script(lua("requeue"))

    @property
    def consumer_class(self) -> type[RobustConsumer]:
        return RobustConsumer

    def enqueue(
        self, message: dramatiq.Message[Any], *, delay: int | None = None
    ) -> dramatiq.Message[Any]:
        sent, queue_name, data = self.prepare_enqueue(message, delay=delay)
        try:
            self.do_enqueue(queue_name, sent.options["redis_message_id"], data)
        except REDIS_ERRORS:
            self.abandon_claims(sent)
            raise
        self.emit_after("enqueue", sent, delay)
        return sent

    def abandon_claims(self, message: dramatiq.Message[Any]) -> None:
        """The uniqueness key was claimed before the push failed (a dropped connection, a
        failover): give it back, or resubmissions would get a job that never was."""
        from runtime.middleware.uniqueness import Uniqueness  # imports this module

        with contextlib.suppress(*REDIS_ERRORS):
            for middleware in self.middleware:
                if isinstance(middleware, Uniqueness):
                    middleware.abandon(message)

    def prepare_enqueue(
        self, message: dramatiq.Message[Any], *, delay: int | None = None
    ) -> tuple[dramatiq.Message[Any], str, bytes]:
        """Dramatiq's RedisBroker.enqueue up to its Redis write: the message as sent (its Redis
        id, its eta when delayed), the queue it goes to and its body, after the before_enqueue
        hooks ran. The API's async enqueue (runtime/async_enqueue.py) writes it itself."""
        data = message.encode()
        if len(data) > self.max_message_bytes:
            raise MessageTooLarge(
                f"message for {message.actor_name} is {len(data)} bytes, more than the "
                f"{self.max_message_bytes} the broker accepts (MAX_MESSAGE_BYTES)"
            )
        # do_enqueue (or take_pending), called next on this thread, pushes to the class's list.
        self._pending_class.value = message.options.get(CLASS_OPTION)
        queue_name = message.queue_name
        options: dict[str, Any] = {"redis_message_id": str(uuid.uuid4())}
        if delay is not None:
            queue_name = dq_name(queue_name)
            options["eta"] = current_millis() + delay
        sent = message.copy(queue_name=queue_name, options=options)
        self.emit_before("enqueue", sent, delay)
        return sent, queue_name, sent.encode()

    def measure_clock_offset(self) -> int:
        before = current_millis()
        seconds, micros = self.client.time()
        after = current_millis()
        self.clock_offset_ms = (before + after) // 2 - (seconds * 1000 + micros // 1000)
        self._offset_measured_at = time.monotonic()
        return self.clock_offset_ms

    def now_ms(self) -> int:
        """Redis server time, from the local clock and the last measured offset."""
        if time.monotonic() - self._offset_measured_at > OFFSET_REFRESH_S:
            try:
                self.measure_clock_offset()
            except REDIS_ERRORS:
                self._offset_measured_at = time.monotonic()  # Redis away: keep the last offset
        return current_millis() - self.clock_offset_ms

    def _dispatch(self, command: str) -> Callable[..., Any]:
        """Dramatiq's call of its Lua dispatch script, stamped with Redis time."""
        script = self.scripts["dispatch"]

        def dispatch(queue_name: str, *args: Any) -> Any:
            return script(
                keys=[self.namespace],
                args=[
                    command,
                    self.now_ms(),
                    queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    self._should_do_maintenance(command),
                    self._max_unpack_size(),
                    *args,
                ],
            )

        return dispatch

    def maintain(self, queue: str, *, now_ms: int | None = None) -> None:
        """Dramatiq's Lua maintenance on one queue, now: dead workers' unacked messages back to
        the queue, expired dead letters dropped. (Stock runs it on a random 0.1 % of calls.)"""
        self.scripts["dispatch"](
            keys=[self.namespace],
            args=[
                "qsize",
                now_ms or self.now_ms(),
                queue,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                1,  # do_maintenance
                self._max_unpack_size(),
            ],
        )

    def create_record_with(self, redis_id: str, argv: list[Any]) -> bool:
        """Have the coming enqueue of `redis_id` create its record in the same round trip
        (JobTracking asks, in before_enqueue); False when this broker cannot."""
        if self.records is None:
            return False
        self._pending_records.value = (redis_id, argv)
        return True

    def take_pending(self, queue_name: str, redis_id: str) -> tuple[list[str], list[Any] | None]:
        """What before_enqueue left on this thread for the message: the keys of its ready list,
        bodies hash and wake list, and the arguments of its record's creation (None: no record
        written with it). Taken once: the next enqueue starts afresh."""
        pending = getattr(self._pending_records, "value", None)
        self._pending_records.value = None
        priority_class = getattr(self._pending_class, "value", None)
        self._pending_class.value = None
        # A delayed message waits in the delay queue's one list; its class applies when it is
        # moved to its queue (through enqueue again, options intact).
        ready = f"{self.namespace}:{queue_name}"
        if priority_class and not queue_name.endswith(".DQ"):
            ready = list_key(self.namespace, queue_name, PriorityClass(priority_class))
        keys = [ready, f"{self.namespace}:{queue_name}.msgs"]
        if not moving_delayed():
            # A delayed message moved here wakes the queue once its delay-queue copy is acked
            # (do_ack): woken now, a consumer could run it while that copy still counts.
            keys.append(wake_key(self.namespace, queue_name))
        if pending is None or pending[0] != redis_id or self.records is None:
            return keys, None
        return keys, pending[1]

    def do_enqueue(self, queue_name: str, redis_id: str, data: bytes) -> Any:
        keys, record = self.take_pending(queue_name, redis_id)
        if record is not None:
            assert self.records is not None
            return self.records.enqueue(keys, [redis_id, data], record)
        ready, bodies = keys[:2]
        if ready == f"{self.namespace}:{queue_name}":
            return self._dispatch("enqueue")(queue_name, redis_id, data)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(bodies, redis_id, data)
        pipe.rpush(ready, redis_id)
        return pipe.execute()

    def do_requeue(self, queue_name: str, *redis_ids: str) -> Any:
        """Fetched messages back to the ready list of their class (Dramatiq's requeue knows one
        list, and would turn a critical job handed back at shutdown into a normal one)."""
        if queue_name.endswith(".DQ"):
            return self._dispatch("requeue")(queue_name, *redis_ids)
        critical, high, normal, low = list_keys(self.namespace, queue_name)
        keys = [self.ack_key(queue_name), f"{self.namespace}:{queue_name}.msgs"]
        return self.requeue_script(keys=[*keys, normal, critical, high, low], args=redis_ids)

    def do_ack(self, queue_name: str, redis_id: str) -> Any:
        settled = self._settle("ack", queue_name, redis_id)
        if queue_name.endswith(".DQ"):
            # The delay queue's copy of a message moved to its queue is gone: wake that queue.
            wake = wake_key(self.namespace, q_name(queue_name))
            self.client.pipeline(transaction=False).lpush(wake, 1).ltrim(wake, 0, 0).execute()
        return settled

    def do_nack(self, queue_name: str, redis_id: str) -> Any:
        return self._settle("nack", queue_name, redis_id)

    def _settle(self, command: str, queue: str, redis_id: str) -> Any:
        """Dramatiq's ack/nack; with the job record's end when the consumer attached one, the
        record's transition and the ack in one script."""
        end = getattr(self.settling, "end", None)
        if end is None or self.records is None:
            return self._dispatch(command)(queue, redis_id)
        keys = self._settle_keys.get(queue)
        if keys is None:  # built once per queue (the broker id never changes)
            dead = f"{self.namespace}:{q_name(queue)}.XQ"
            keys = self._settle_keys[queue] = (
                self.ack_key(queue),
                f"{self.namespace}:{queue}.msgs",
                dead,
                f"{dead}.msgs",
                f"{self.namespace}:__heartbeats__",
            )
        head = [command, redis_id, self.now_ms(), self.broker_id]
        taken = self._next_start()
        if taken is None:
            return self.records.settle(keys, head, end)
        message, start = taken
        try:
            settled, started = self.records.settle_and_start(keys, head, end, start)
        except BaseException:
            setattr(message, PRESTARTED, Prestart(start, None))  # sent again when it begins
            raise
        setattr(message, PRESTARTED, Prestart(start, started))
        return settled

    def _next_start(self) -> tuple[MessageProxy, list[Any]] | None:
        """The job the calling worker thread runs next and its STARTED's arguments, when one
        waits in the work queue and may be started early (runtime/prestart.py)."""
        take = getattr(threading.current_thread(), "take_next", None)
        if take is None or self.prestart is None:
            return None
        message = take()
        if message is None:
            return None
        try:
            start = self.prestart(message)
        except Exception:  # never the end of the job before: this one starts as usual
            self.logger.exception("could not start %s early", message.message_id)
            return None
        return None if start is None else (message, start)

    def flush(self, queue_name: str) -> None:
        super().flush(queue_name)
        self.client.delete(*list_keys(self.namespace, queue_name))

    def ack_key(self, queue: str) -> str:
        return f"{self.namespace}:__acks__.{self.broker_id}.{queue}"

    def sweep_orphans(self, queues: Iterable[str]) -> int:
        """Give back fetched messages this process no longer holds; returns how many.

        An id is given back only when two sweeps in a row find it unheld, so a message between
        the fetch script and its registration is never mistaken for an orphan."""
        returned = 0
        for queue in queues:
            members = {m.decode() for m in self.client.smembers(self.ack_key(queue))}
            orphans = members - self.holdings.of(queue)
            confirmed = orphans & self._suspects.get(queue, set())
            self._suspects[queue] = orphans - confirmed
            if confirmed:
                self.do_requeue(queue, *confirmed)
                returned += len(confirmed)
        return returned

    def hand_back(self, queues: Iterable[str]) -> int:
        """At shutdown: every message still unacknowledged goes back to its queue now, instead of
        waiting for broker maintenance to find this worker dead."""
        returned = 0
        for queue in queues:
            members = [m.decode() for m in self.client.smembers(self.ack_key(queue))]
            if members:
                self.do_requeue(queue, *members)
                returned += len(members)
            self.holdings.clear(queue)
        return returned

    def reject(self, rejected: Rejected) -> None:
        self.logger.error(
            "Dead-lettered message %s of queue %r: %s",
            rejected.message_id or rejected.redis_id,
            rejected.queue,
            rejected.reason,
        )
        if self.on_rejected is not None:
            try:
                self.on_rejected(rejected)
            except redis.RedisError:
                self.logger.exception("could not record the rejection of %s", rejected.redis_id)


class RobustConsumer(_RedisConsumer):
    broker: RobustRedisBroker

    def __init__(self, broker: RobustRedisBroker, queue_name: str, prefetch: int, timeout: int):
        super().__init__(broker, queue_name, prefetch, timeout)
        self.entries: list[list[Any]] = []
        #: Where this consumer is in the fetch script's round of priority classes.
        self.turn = 0
        self.wake, self.slots = wake_key(broker.namespace, queue_name), Slots()
        #: The fetch script's keys, built once (the namespace and the broker id never change).
        namespace, dead = broker.namespace, f"{broker.namespace}:{q_name(queue_name)}.XQ"
        critical, high, normal, low = list_keys(namespace, queue_name)
        self.fetch_keys = [
            normal,
            f"{namespace}:{queue_name}.msgs",
            broker.ack_key(queue_name),
            f"{namespace}:__heartbeats__",
            dead,
            f"{dead}.msgs",
            critical,
            high,
            low,
        ]
        if queue_name.endswith(".DQ"):
            # A new consumer on a delay queue means the consumer thread has requeued or dropped
            # its in-memory delayed messages: whatever is still in the ack set is an orphan.
            broker.holdings.clear(queue_name)

    @property
    def outstanding_message_count(self) -> int:
        return len(self.queued_message_ids) + len(self.entries)

    def _settle(self, command: str, message: MessageProxy) -> None:
        """Ack or nack through the broker's do_ack/do_nack, as Dramatiq's consumer does (code
        that wraps those hooks sees every settlement), with the job record's end attached."""
        redis_id = message.options["redis_message_id"]
        self.broker.settling.end = getattr(message, SETTLE, None)
        try:
            getattr(self.broker, f"do_{command}")(self.queue_name, redis_id)
        except REDIS_ERRORS as error:
            raise ConnectionClosed(error) from None
        finally:
            self.broker.settling.end = None
            # As Dramatiq's: no longer outstanding once tried; the worker retries a failed ack.
            self.queued_message_ids.discard(message.message_id)
        self.broker.holdings.discard(self.queue_name, (redis_id,))
        if self.outstanding_message_count <= self.prefetch // 2:
            self.slots.freed()

    def ack(self, message: MessageProxy) -> None:
        self._settle("ack", message)

    def nack(self, message: MessageProxy) -> None:
        self._settle("nack", message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        ids = [message.options["redis_message_id"] for message in messages]
        if not ids:
            return
        try:
            self.broker.do_requeue(self.queue_name, *ids)
        except REDIS_ERRORS as error:
            raise ConnectionClosed(error) from None
        self.broker.holdings.discard(self.queue_name, ids)

    def close(self) -> None:
        """Fetched but never handed out: back to the queue (the stock consumer forgets them)."""
        ids = [entry[0].decode() for entry in self.entries]
        self.entries = []
        if not ids:
            return
        self.broker.holdings.discard(self.queue_name, ids)
        try:
            self.broker.do_requeue(self.queue_name, *ids)
        except REDIS_ERRORS:
            pass  # still in the ack set and no longer held: the next sweep gives them back

    def _fetch(self, count: int) -> list[list[Any]]:
        queue = self.queue_name
        if self.broker._should_do_maintenance("fetch"):
            self.broker.maintain(queue)  # what Dramatiq's own fetch would have done
        entries: list[list[Any]] = self.broker.thread_scripts.run(
            self.broker.fetch_script,
            self.fetch_keys,
            [
                count,
                self.broker.broker_id,
                self.broker.now_ms(),
                self.broker.max_message_bytes,
                self.turn,
            ],
        )
        self.turn = (self.turn + len(entries)) % 15
        self.broker.holdings.add(queue, (e[0].decode() for e in entries if e[1]))
        return entries

    def _dead_letter(
        self, redis_id: str, message_id: str, actor: str, kind: str, reason: str
    ) -> None:
        self.broker.do_nack(self.queue_name, redis_id)
        self.broker.holdings.discard(self.queue_name, (redis_id,))
        self.broker.reject(Rejected(self.queue_name, redis_id, message_id, actor, kind, reason))

    def _accept(self, entry: list[Any]) -> MessageProxy | None:
        redis_id, body = entry[0].decode(), entry[1]
        if not body:
            if len(entry) >= 5 and int(entry[2]) > 0:
                # Already dead-lettered by the fetch script; only the reason is left to record.
                size, message_id, actor = int(entry[2]), entry[3].decode(), entry[4].decode()
                reason = (
                    f"message body of {size} bytes exceeds MAX_MESSAGE_BYTES "
                    f"({self.broker.max_message_bytes}); dead-lettered without being fetched"
                )
                rejected = Rejected(
                    self.queue_name, redis_id, message_id, actor, "MessageTooLarge", reason
                )
                self.broker.reject(rejected)
            return None
        try:
            message: dramatiq.Message[Any] = dramatiq.Message.decode(body)
        except (DecodeError, TypeError, ValueError, KeyError, AttributeError) as error:
            reason = f"undecodable message body: {str(error)[:300]}"
            self._dead_letter(redis_id, "", "", "MalformedMessage", reason)
            return None
        if message.options.get("redis_message_id") != redis_id:
            # Pushed by hand or by another tool: acks must name the id it is stored under.
            message = message.copy(options={"redis_message_id": redis_id})
        try:
            self.broker.get_actor(message.actor_name)
        except ActorNotFound:
            reason = f"no actor named {message.actor_name!r} is registered"
            self._dead_letter(
                redis_id, message.message_id, message.actor_name, "UnknownActor", reason
            )
            return None
        self.queued_message_ids.add(message.message_id)
        return FetchedMessage(message)

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.entries:
                    accepted = self._accept(self.entries.pop(0))
                    if accepted is not None:
                        self.misses = 0
                        return accepted
                    continue
                if self.outstanding_message_count < self.prefetch:
                    self.entries = self._fetch(self.prefetch - self.outstanding_message_count)
                if not self.entries:
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                    if self.outstanding_message_count >= self.prefetch:
                        self.slots.wait(backoff_ms / 1000)
                    else:
                        wait_for_message(self.broker.client, self.wake, backoff_ms / 1000)
                    return None
        except REDIS_ERRORS as error:
            raise ConnectionClosed(error) from None
