"""The control plane shared by the API and the CLI: queue figures, cancel, dead letters.

It reads Dramatiq's Redis layout (`dramatiq:{queue}` list of ids, `.msgs` hash of bodies, `.DQ`
delay queue, `.XQ` dead-letter sorted set) without scanning keys; a few pipelined round trips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq_abort import Abortable
from dramatiq_abort.middleware import AbortMode

from domain.errors import Conflict, NotFound
from runtime.build import middleware_of
from runtime.consumer import RobustRedisBroker
from runtime.job_records import JobRecord, JobRecords, State
from runtime.middleware.uniqueness import DuplicateJob, Uniqueness
from runtime.priorities import ORDER, list_keys

#: Message options a re-drive drops so the job starts afresh.
RUN_OPTIONS = ("retries", "traceback", "requeue_timestamp", "retry_eta", "failure_reason", "eta")


@dataclass(frozen=True)
class QueueStats:
    name: str
    ready: int
    delayed: int
    dead_letters: int
    in_flight: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class DeadLetter:
    task_id: str
    dead_letter_id: str
    task_name: str
    failed_at: float
    record: JobRecord | None


class Control:
    def __init__(self, broker: RobustRedisBroker, records: JobRecords) -> None:
        self.broker = broker
        self.client: redis.Redis = broker.client
        self.records = records
        self.ns = broker.namespace

    def _key(self, queue: str, suffix: str = "") -> str:
        return f"{self.ns}:{queue}{suffix}"

    # -- queues ---------------------------------------------------------------------------

    def queue_stats(self, queues: tuple[str, ...]) -> list[QueueStats]:
        """Ready counts every priority class's list; the oldest age is over their heads."""
        classes = len(ORDER)
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.hlen(self._key(queue, ".DQ.msgs"))
            pipe.zcard(self._key(queue, ".XQ"))
            pipe.hlen(self._key(queue, ".msgs"))
            for key in list_keys(self.ns, queue):
                pipe.llen(key)
                pipe.lindex(key, 0)
        raw = pipe.execute()
        width = 3 + 2 * classes
        rows = [raw[i : i + width] for i in range(0, len(raw), width)]
        # The oldest ready message is at the head of a list; its body holds its timestamp.
        pipe = self.client.pipeline(transaction=False)
        for queue, row in zip(queues, rows, strict=True):
            for head_id in row[4::2]:
                pipe.hget(self._key(queue, ".msgs"), head_id) if head_id else pipe.echo("")
        heads = pipe.execute()
        now_ms = time.time() * 1000
        stats = []
        for index, (queue, row) in enumerate(zip(queues, rows, strict=True)):
            delayed, dead, bodies = row[0], row[1], row[2]
            ready = sum(row[3::2])
            age = 0.0
            for head in heads[index * classes : (index + 1) * classes]:
                if not head:
                    continue
                try:
                    stamp = dramatiq.Message.decode(head).message_timestamp
                except Exception:  # a malformed body must not break the figures
                    continue
                age = max(age, (now_ms - stamp) / 1000)
            stats.append(
                QueueStats(queue, ready, delayed, dead, max(0, bodies - ready), round(age, 3))
            )
        return stats

    # -- cancel ---------------------------------------------------------------------------

    def cancel(self, task_id: str) -> State:
        """Cancel a queued or running job; returns the state it had. REVOKED afterwards."""
        record = self.records.get(task_id)
        if record is None:
            raise NotFound(f"unknown task_id {task_id!r} (never existed or expired)")
        if not record.active:
            raise Conflict(f"task {task_id} is already {record.state.value}; nothing to cancel")
        outcome = self.records.transition(
            task_id,
            State.REVOKED,
            epoch=-1,
            mode="active",
            fields={"completed_at": int(time.time() * 1000)},
        )
        if outcome != State.REVOKED:
            raise Conflict(
                f"task {task_id} finished meanwhile as {outcome.value if outcome else '?'}"
            )
        abortable = middleware_of(self.broker, Abortable)
        assert isinstance(abortable, Abortable)
        abortable.abort(task_id, mode=AbortMode.ABORT)
        if record.unique_key:
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=record.queue,
                actor_name=record.task_name,
                args=(),
                kwargs={},
                options={"unique_key": record.unique_key},
                message_id=task_id,
            )
            self._release_unique(message)
        return record.state

    def _release_unique(self, message: dramatiq.Message[Any]) -> None:
        if message.options.get("unique_key"):
            uniqueness = middleware_of(self.broker, Uniqueness)
            assert isinstance(uniqueness, Uniqueness)
            uniqueness.release(message)

    def purge(self, queue: str) -> dict[str, int]:
        """Drop the queue's waiting messages (ready and delayed); running ones are left alone.

        Each dropped job's record becomes REVOKED ("purged by an operator") and its uniqueness
        key is released, so the same work can be submitted again at once.
        """
        dropped: dict[str, int] = {}
        lists = [(key, self._key(queue, ".msgs")) for key in list_keys(self.ns, queue)]
        lists.append((self._key(queue, ".DQ"), self._key(queue, ".DQ.msgs")))
        for ready, msgs in lists:
            name = ready.removeprefix(f"{self.ns}:")
            pipe = self.client.pipeline(transaction=True)
            pipe.lrange(ready, 0, -1)
            pipe.delete(ready)
            ids, _ = pipe.execute()
            bodies = self.client.hmget(msgs, ids) if ids else []
            if ids:
                self.client.hdel(msgs, *ids)
            for body in bodies:
                if body is None:
                    continue
                try:
                    message: dramatiq.Message[Any] = dramatiq.Message.decode(body)
                except Exception:  # an undecodable body is dropped with the rest
                    continue
                self.records.transition(
                    message.message_id,
                    State.REVOKED,
                    epoch=-1,
                    mode="active",
                    fields={
                        "completed_at": int(time.time() * 1000),
                        "failure_reason": "purged by an operator",
                    },
                )
                self._release_unique(message)
            kind = "delayed" if name.endswith(".DQ") else "ready"
            dropped[kind] = dropped.get(kind, 0) + len(ids)
        return dropped

    # -- dead letters ---------------------------------------------------------------------

    def dead_letters(
        self, queue: str, *, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[DeadLetter]]:
        total = self.client.zcard(self._key(queue, ".XQ"))
        rows = self.client.zrevrange(
            self._key(queue, ".XQ"), offset, offset + limit - 1, withscores=True
        )
        if not rows:
            return total, []
        bodies = self.client.hmget(self._key(queue, ".XQ.msgs"), [member for member, _ in rows])
        found: list[tuple[str, str, str, float]] = []
        for (member, score), body in zip(rows, bodies, strict=True):
            if body is None:
                continue
            try:
                message = dramatiq.Message.decode(body)
                task_id, task_name = message.message_id, message.actor_name
            except Exception:  # undecodable body: still listed so it can be deleted
                task_id, task_name = member.decode(), "<undecodable>"
            found.append((task_id, member.decode(), task_name, score / 1000))
        by_id = {r.task_id: r for r in self.records.get_many(row[0] for row in found)}
        return total, [DeadLetter(*row, by_id.get(row[0])) for row in found]

    def _find_dead_letter(self, queue: str, task_id: str) -> str:
        record = self.records.get(task_id)
        xq = self._key(queue, ".XQ.msgs")
        if record and record.dead_letter_id and self.client.hexists(xq, record.dead_letter_id):
            return record.dead_letter_id
        # The record expired: look through the dead letters themselves (admin path, bounded).
        for member, body in self.client.hscan_iter(xq, count=500):
            try:
                if dramatiq.Message.decode(body).message_id == task_id:
                    return member.decode()
            except Exception:
                if member.decode() == task_id:
                    return task_id
        raise NotFound(f"task {task_id} is not among the dead letters of queue {queue!r}")

    def requeue_dead_letter(self, queue: str, task_id: str) -> str:
        """Send a dead-lettered job again with a fresh retry budget; returns its task id."""
        dead_letter_id = self._find_dead_letter(queue, task_id)
        xq, xq_msgs = self._key(queue, ".XQ"), self._key(queue, ".XQ.msgs")
        body = self.client.hget(xq_msgs, dead_letter_id)
        score = self.client.zscore(xq, dead_letter_id)
        if body is None or not self.client.zrem(xq, dead_letter_id):
            raise NotFound(f"dead letter {task_id} was re-driven or deleted meanwhile")
        try:
            message: dramatiq.Message[Any] = dramatiq.Message.decode(body)
        except Exception as error:
            self.client.zadd(xq, {dead_letter_id: score or time.time() * 1000})
            raise Conflict(
                f"dead letter {task_id} cannot be decoded ({error}); delete it"
            ) from None
        fresh = message.copy(queue_name=queue)
        for option in RUN_OPTIONS:
            fresh.options.pop(option, None)
        fresh.options["redrives"] = int(message.options.get("redrives", 0)) + 1
        try:
            self.broker.enqueue(fresh)
        except DuplicateJob as duplicate:
            self.client.zadd(xq, {dead_letter_id: score or time.time() * 1000})
            raise Conflict(
                f"a job with the same key is active ({duplicate.existing_task_id}); not re-driven"
            ) from None
        self.client.hdel(xq_msgs, dead_letter_id)
        return message.message_id

    def requeue_all_dead_letters(self, queue: str) -> dict[str, Any]:
        requeued: list[str] = []
        refused: list[dict[str, str]] = []
        while True:
            total, letters = self.dead_letters(queue, offset=len(refused), limit=100)
            if not letters:
                break
            for letter in letters:
                try:
                    requeued.append(self.requeue_dead_letter(queue, letter.task_id))
                except (Conflict, NotFound) as error:
                    refused.append({"task_id": letter.task_id, "reason": str(error)})
        return {"requeued": len(requeued), "refused": refused}

    def delete_dead_letter(self, queue: str, task_id: str) -> None:
        dead_letter_id = self._find_dead_letter(queue, task_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self._key(queue, ".XQ"), dead_letter_id)
        pipe.hdel(self._key(queue, ".XQ.msgs"), dead_letter_id)
        pipe.execute()

    def delete_all_dead_letters(self, queue: str) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(self._key(queue, ".XQ"))
        pipe.delete(self._key(queue, ".XQ"), self._key(queue, ".XQ.msgs"))
        return int(pipe.execute()[0])

    # -- broker maintenance ---------------------------------------------------------------

    def recover_dead_workers(self, queues: tuple[str, ...]) -> dict[str, Any]:
        """Give the unacked messages of dead workers back to their queues, now.

        Dramatiq's Redis broker does this only when a random 0.1% of broker calls run its
        maintenance, which on a quiet system can take many minutes. This runs the same Lua
        maintenance deterministically, once per queue (and its delay queue), and reports how
        many messages came back and from how many dead workers.
        """
        now_ms = self.broker.now_ms()
        timeout_ms = int(self.broker.heartbeat_timeout)
        dead = [
            worker.decode()
            for worker in self.client.zrangebyscore(
                f"{self.ns}:__heartbeats__", 0, now_ms - timeout_ms
            )
        ]
        names = [name for queue in queues for name in (queue, f"{queue}.DQ")]
        pipe = self.client.pipeline(transaction=False)
        for worker in dead:
            for name in names:
                pipe.smembers(f"{self.ns}:__acks__.{worker}.{name}")
        pending = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        checked: list[str] = []
        for index, ids in enumerate(pending):
            name = names[index % len(names)]
            for message_id in ids:
                pipe.hexists(self._key(name, ".msgs"), message_id)
                checked.append(name)
        recovered: dict[str, int] = {}
        for name, exists in zip(checked, pipe.execute(), strict=True):
            if exists:
                canonical = name.removesuffix(".DQ")
                recovered[canonical] = recovered.get(canonical, 0) + 1
        for name in names:
            self.broker.maintain(name, now_ms=now_ms)
        return {
            "dead_workers": len(dead),
            "recovered": sum(recovered.values()),
            "recovered_by_queue": recovered,
        }
