"""Keeps each job's record in Redis through its life: PENDING -> STARTED -> SUCCESS/RETRY/FAILURE.

Each hook is one Lua call (one round trip). Place it before Retries in the middleware list: after-
hooks run in reverse order, so it sees Retries' decision (retry or fail) for the same message.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage
from dramatiq_abort import Abort

from actors.records import JobRecords, State, encode_error, encode_result, epoch_of, now_ms
from domain.redact import redact_payload


class JobCancelled(SkipMessage):
    """The job was cancelled while it waited in the queue."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class JobTracking(Middleware):
    """Writes job records; actors declare which payload fields to mask with the `redact` option."""

    def __init__(self, *, records: JobRecords, dead_letter_ttl_s: int) -> None:
        self.records = records
        self.dead_letter_ttl_s = max(dead_letter_ttl_s, records.retention_s)

    @property
    def actor_options(self) -> set[str]:
        return {"redact"}

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        # Only the first enqueue creates the record; retries and delayed-queue moves find it there.
        actor = broker.get_actor(message.actor_name)
        args = redact_payload(message.kwargs, extra=actor.options.get("redact", ()))
        now = now_ms()
        self.records.transition(
            message.message_id,
            State.PENDING,
            epoch=epoch_of(message.options),
            mode="create",
            fields={
                "task_id": message.message_id,
                "task_name": message.actor_name,
                "queue": actor.queue_name,
                "args": json.dumps(args, default=str, ensure_ascii=False),
                "enqueued_at": now,
                "eta": now + delay if delay else None,
                "progress": 0,
                "attempts": 0,
                "unique_key": message.options.get("unique_key"),
            },
        )

    def before_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy
    ) -> None:
        state = self.records.transition(
            message.message_id,
            State.STARTED,
            epoch=epoch_of(message.options),
            fields={
                "started_at": now_ms(),
                "worker": worker_name(),
                "progress": 0,
                "progress_note": "",
                "eta": None,
            },
        )
        if state == State.REVOKED:
            raise JobCancelled(f"job {message.message_id} was cancelled before it started")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        epoch = epoch_of(message.options)
        done = {"completed_at": now_ms()}
        if exception is None:
            self.records.transition(
                message.message_id,
                State.SUCCESS,
                epoch=epoch,
                fields={**done, "progress": 100, "result": encode_result(result)},
            )
        elif isinstance(exception, Abort):
            self.records.transition(
                message.message_id,
                State.REVOKED,
                epoch=epoch,
                fields={**done, "error": encode_error(exception, "cancelled while running")},
            )
        elif message.failed:
            self.records.transition(
                message.message_id,
                State.FAILURE,
                epoch=epoch,
                ttl_s=self.dead_letter_ttl_s,
                fields={
                    **done,
                    "error": encode_error(exception, message.options.get("traceback", "")),
                    "failure_reason": message.options.get("failure_reason", ""),
                    "dead_letter_id": message.options.get("redis_message_id"),
                },
            )
        else:
            self.records.transition(
                message.message_id,
                State.RETRY,
                epoch=epoch,
                fields={
                    "eta": message.options.get("retry_eta"),
                    "error": encode_error(exception, message.options.get("traceback", "")),
                },
            )

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.failed:  # e.g. AgeLimit: too old to run, dead-lettered
            self.records.transition(
                message.message_id,
                State.FAILURE,
                epoch=epoch_of(message.options),
                ttl_s=self.dead_letter_ttl_s,
                fields={
                    "completed_at": now_ms(),
                    "failure_reason": "skipped",
                    "dead_letter_id": message.options.get("redis_message_id"),
                },
            )
        else:
            self.records.transition(
                message.message_id, State.REVOKED, epoch=-1, fields={"completed_at": now_ms()}
            )
