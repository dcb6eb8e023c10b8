"""Keeps each job's record in Redis through its life: PENDING -> STARTED -> SUCCESS/RETRY/FAILURE.

Each hook is one Lua call (one round trip). Place it before Retries in the middleware list: after-
hooks run in reverse order, so it sees Retries' decision (retry or fail) for the same message.

The record also guards deliveries, because Redis queues deliver at least once:
- a delivery of an attempt whose record already ended (SUCCESS, FAILURE, REVOKED), or of an
  older attempt than the record's, is a duplicate (a redelivery after a crash or a Redis
  restart): it is skipped, not run again;
- an attempt whose workers died under it `max_worker_deaths` times (OOM kills, segfaults) is
  dead-lettered with that reason instead of being redelivered forever (Dramatiq issue 213).
In a worker, record writes wait for Redis through an outage instead of being lost.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage
from dramatiq_abort import Abort

from domain.platform.redact import redact_payload
from runtime import prestart
from runtime.consumer import SETTLE, Rejected, RobustRedisBroker
from runtime.job_records import (
    JobRecords,
    State,
    Transition,
    encode_error,
    encode_result,
    epoch_of,
    now_ms,
)
from runtime.outage import until_redis_answers
from runtime.prestart import PRESTARTED, Prestart
from runtime.sealing import opened_for_record

#: What a failure left on a record that a re-drive's first enqueue clears.
CLEARED_BY_REDRIVE = ("error", "failure_reason", "dead_letter_id", "completed_at", "progress_note")

#: Attribute set on a MessageProxy whose delivery is a duplicate: later hooks leave it alone.
DUPLICATE = "_gaveurs_duplicate_delivery"


class JobCancelled(SkipMessage):
    """The job was cancelled while it waited in the queue."""


class DuplicateDelivery(SkipMessage):
    """This attempt already ran to an end (or a newer attempt exists): not run twice."""


class WorkerDeaths(SkipMessage):
    """Workers died under this attempt too many times: dead-lettered, not redelivered."""


def is_duplicate(message: MessageProxy) -> bool:
    return bool(getattr(message, DUPLICATE, False))


@functools.cache
def _process_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


_names = threading.local()


def worker_name() -> str:
    """host:pid:thread of the calling thread, built once per thread (and again after a fork)."""
    pid = os.getpid()
    cached: tuple[int, str] | None = getattr(_names, "value", None)
    if cached is None or cached[0] != pid:
        cached = _names.value = (pid, f"{_process_name(pid)}:{threading.current_thread().name}")
    return cached[1]


class JobTracking(Middleware):
    """Writes job records; actors declare which payload fields to mask with the `redact` option."""

    def __init__(
        self,
        *,
        records: JobRecords,
        dead_letter_ttl_s: int,
        max_worker_deaths: int = 3,
        outage_patience_s: float = 300.0,
    ) -> None:
        self.records = records
        self.dead_letter_ttl_s = max(dead_letter_ttl_s, records.retention_s)
        self.max_worker_deaths = max_worker_deaths
        self.outage_patience_s = outage_patience_s

    @property
    def actor_options(self) -> set[str]:
        return {"redact", "max_worker_deaths"}

    def _write(self, message: MessageProxy, state: State, **kwargs: Any) -> Transition | None:
        task_id = message.message_id
        return until_redis_answers(
            lambda: self.records.apply(task_id, state, **kwargs),
            patience_s=self.outage_patience_s,
            what=f"record {state.value} of {task_id}",
        )

    def record_rejected(self, rejected: Rejected) -> None:
        """A fetched message that could not run (malformed, too large, unknown actor) is in the
        dead letters: its record says why, under its task id, or its Redis id when unreadable."""
        task_id = rejected.message_id or rejected.redis_id
        error = {"type": rejected.error_type, "message": rejected.reason, "traceback": ""}
        self.records.transition(
            task_id,
            State.FAILURE,
            epoch=-1,
            ttl_s=self.dead_letter_ttl_s,
            fields={
                "task_id": task_id,
                "task_name": rejected.actor_name or "<undecodable>",
                "queue": rejected.queue.removesuffix(".DQ"),
                "completed_at": now_ms(),
                "error": json.dumps(error, ensure_ascii=False),
                "failure_reason": rejected.reason,
                "dead_letter_id": rejected.redis_id,
            },
        )

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        # Only the first enqueue creates the record; retries and delayed-queue moves find it there.
        # A re-drive's first enqueue (runtime/control.py) starts a new epoch over the failure: it
        # clears the failure in the same call as the push, so a worker that fetches the message
        # at once never finishes it under the old error. Its attempts count on.
        actor = broker.get_actor(message.actor_name)
        masked = tuple(actor.options.get("redact", ()))
        args = redact_payload(opened_for_record(message.kwargs, masked), extra=masked)
        now = now_ms()
        fields: dict[str, Any] = {
            "task_id": message.message_id,
            "task_name": message.actor_name,
            "queue": actor.queue_name,
            "args": json.dumps(args, default=str, ensure_ascii=False),
            "enqueued_at": now,
            "eta": now + delay if delay else None,
            "progress": 0,
            "unique_key": message.options.get("unique_key"),
            "client": message.options.get("client"),
        }
        redrives = int(message.options.get("redrives", 0))
        if redrives and not message.options.get("retries"):
            mode = "newer"
            fields.update(dict.fromkeys(CLEARED_BY_REDRIVE, ""), redrives=redrives)
        else:
            mode, fields["attempts"] = "create", 0
        creation: dict[str, Any] = dict(epoch=epoch_of(message.options), mode=mode, fields=fields)
        redis_id = message.options.get("redis_message_id")
        if isinstance(broker, RobustRedisBroker) and redis_id:
            argv = self.records.arguments(message.message_id, State.PENDING, **creation)
            if broker.create_record_with(redis_id, argv):
                return
        self.records.transition(message.message_id, State.PENDING, **creation)

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if isinstance(broker, RobustRedisBroker):  # STARTED with the previous job's end
            broker.prestart = functools.partial(self.start_arguments, broker)
            prestart.install(worker)

    def start_arguments(self, broker: dramatiq.Broker, message: MessageProxy) -> list[Any] | None:
        """The STARTED transition's script arguments of a job its worker thread turns to; None
        for a job a hook before this one may skip without running it (runtime/prestart.py)."""
        options = message.options
        if options.get("schedule_entry") or options.get("max_age"):
            return None  # ScheduledRuns skips a late run, AgeLimit an old one
        if broker.get_actor(message.actor_name).options.get("max_age"):
            return None
        return self.start_arguments_now(message)

    def start_arguments_now(self, message: MessageProxy) -> list[Any]:
        """The STARTED transition's script arguments, with a new delivery token."""
        return self.records.arguments(
            message.message_id,
            State.STARTED,
            epoch=epoch_of(message.options),
            fields={
                "started_at": now_ms(),
                "worker": worker_name(),
                "progress": 0,
                "progress_note": "",
                "eta": None,
                "delivery": os.urandom(8).hex(),
            },
        )

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        early: Prestart | None = getattr(message, PRESTARTED, None)
        if early is not None and early.outcome is not None:
            outcome: Transition | None = early.outcome  # written with the end of the job before
        else:  # written now; or again, unchanged (same token), when that call failed
            argv = early.argv if early is not None else self.start_arguments_now(message)
            outcome = until_redis_answers(
                lambda: self.records.apply_arguments(argv),
                patience_s=self.outage_patience_s,
                what=f"record STARTED of {message.message_id}",
            )
        if outcome is None:
            return
        if outcome.state == State.REVOKED:
            raise JobCancelled(f"job {message.message_id} was cancelled before it started")
        if not outcome.applied:
            setattr(message, DUPLICATE, True)
            # Results would store None over the result the first run stored.
            message.options["store_results"] = False
            raise DuplicateDelivery(
                f"job {message.message_id} is already {outcome.state.value}: duplicate delivery "
                "skipped"
            )
        if not outcome.lost_runs:
            return
        actor = broker.get_actor(message.actor_name)
        limit = int(actor.options.get("max_worker_deaths", self.max_worker_deaths))
        if outcome.lost_runs >= limit:
            reason = (
                f"its worker died {outcome.lost_runs} times while running it (killed, out of "
                f"memory?); dead-lettered after {outcome.lost_runs + 1} deliveries"
            )
            message.options["failure_reason"] = reason
            message.fail()
            raise WorkerDeaths(reason)

    def _finish(
        self, broker: dramatiq.Broker, message: MessageProxy, state: State, **options: Any
    ) -> None:
        """The record's end. On our broker it is written with the message's ack, in the same
        round trip (the consumer retries both until Redis answers); elsewhere, now."""
        if isinstance(broker, RobustRedisBroker):
            setattr(message, SETTLE, self.records.arguments(message.message_id, state, **options))
        else:
            self._write(message, state, **options)

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
            self._finish(
                broker,
                message,
                State.SUCCESS,
                epoch=epoch,
                fields={**done, "progress": 100, "result": encode_result(result)},
            )
        elif isinstance(exception, Abort):
            self._finish(
                broker,
                message,
                State.REVOKED,
                epoch=epoch,
                fields={**done, "error": encode_error(exception, "cancelled while running")},
            )
        elif message.failed:
            self._finish(
                broker,
                message,
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
            self._finish(
                broker,
                message,
                State.RETRY,
                epoch=epoch,
                fields={
                    "eta": message.options.get("retry_eta"),
                    "error": encode_error(exception, message.options.get("traceback", "")),
                },
            )

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if is_duplicate(message):
            return  # the record already tells the truth about this attempt
        if message.failed:  # worker deaths, AgeLimit: dead-lettered without running
            reason = message.options.get("failure_reason") or "skipped"
            error = {"type": "WorkerDeaths", "message": reason, "traceback": ""}
            self._write(
                message,
                State.FAILURE,
                epoch=epoch_of(message.options),
                ttl_s=self.dead_letter_ttl_s,
                fields={
                    "completed_at": now_ms(),
                    "failure_reason": reason,
                    "error": json.dumps(error) if reason != "skipped" else "",
                    "dead_letter_id": message.options.get("redis_message_id"),
                },
            )
        else:
            self._write(message, State.REVOKED, epoch=-1, fields={"completed_at": now_ms()})
