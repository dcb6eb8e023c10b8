"""Store and forward: a job submitted while Redis is unreachable is kept in the database journal
and sent when Redis is back, once, in acceptance order (domain/platform/deferred.py stores it).

- `Outbox.submit` is the API's enqueue: Redis first; on a connection error the job is deferred.
  Once a process has deferred a job it keeps deferring until its outbox is drained, so the jobs
  it accepts keep their order across the outage's end.
- `forward` sends pending entries, oldest first, under a Redis lock (one forwarder at a time:
  the API's drain thread, the clock, broker maintenance). Before sending an entry it checks the
  job record: a record means the job reached Redis already (a forwarder that died before marking
  its batch, an enqueue whose answer was lost in the outage), so it is marked, not sent again.
- An entry for a job this process does not declare (a clock or worker of another release, or
  without that job's module) is left pending with those after it, for a process that declares
  it: sent from here it would travel without its record, and the journal's reconciliation would
  then take it for lost and send it again.
- Uniqueness and Idempotency-Keys hold in the database while deferred; when the entry is sent,
  its Idempotency-Key is claimed in Redis too, and a uniqueness key that Redis finds taken (the
  same work submitted directly since Redis came back) makes the entry superseded by that job.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, Unpack

import dramatiq
import redis
from dramatiq.common import q_name
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from domain.errors import BrokerUnavailable, Conflict
from domain.platform import deferred
from domain.platform.redact import redact_payload
from runtime.job_records import JobRecord, JobRecords, State
from runtime.jobs import REGISTRY, Job, Submitted, callback_option
from runtime.middleware.uniqueness import DuplicateJob
from runtime.outage import REDIS_ERRORS

logger = logging.getLogger("gaveurs.deferred")
LOCK_KEY = "gaveurs:deferred:forwarder"
LOCK_MS = 60_000
BATCH = 200
#: How often a process with deferred jobs checks whether Redis is back.
DRAIN_POLL_S = 0.5
#: Forwarded jobs in total (the exporter may publish it).
FORWARDED_KEY = "gaveurs:deferred:forwarded"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"


@dataclass
class Forwarded:
    sent: int = 0
    already_sent: int = 0
    superseded: int = 0
    busy: bool = False
    drained: bool = False
    #: The job of the first entry left for a process that declares it (None: none was).
    undeclared: str | None = None
    superseded_ids: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deferred_sent": self.sent,
            "deferred_already_sent": self.already_sent,
            "deferred_superseded": self.superseded,
            "deferred_drained": self.drained,
            "deferred_left_undeclared": self.undeclared,
        }


def forward(
    broker: Any, records: JobRecords, engine: Engine, *, budget_s: float = 20.0
) -> Forwarded:
    """Send the deferred jobs, oldest first, for at most `budget_s`."""
    outcome = Forwarded()
    client: redis.Redis = broker.client
    token = uuid.uuid4().hex
    if not client.set(LOCK_KEY, token, nx=True, px=LOCK_MS):
        outcome.busy = True
        return outcome
    started = time.monotonic()
    try:
        while time.monotonic() - started < budget_s:
            with Session(engine) as session:
                entries = deferred.pending(session, limit=BATCH)
            if not entries:
                outcome.drained = True
                break
            _forward_batch(broker, records, engine, entries, outcome)
            client.pexpire(LOCK_KEY, LOCK_MS)
            if outcome.undeclared:
                break
    finally:
        # A registered script runs as EVALSHA, which the documented ACL allows (EVAL it does not).
        client.register_script(_RELEASE)(keys=[LOCK_KEY], args=[token])
    if outcome.sent:
        client.incrby(FORWARDED_KEY, outcome.sent)
        logger.info("forwarded %d jobs accepted while Redis was down", outcome.sent)
    return outcome


def _forward_batch(
    broker: Any, records: JobRecords, engine: Engine, entries: list[Any], outcome: Forwarded
) -> None:
    undeclared = next((e for e in entries if e.actor not in broker.actors), None)
    if undeclared is not None:
        # In acceptance order: this entry and the ones after it wait for another process.
        outcome.undeclared = undeclared.actor
        logger.warning(
            "deferred job %s is a %s, which this process does not declare (another release?): "
            "left with the %d after it for a process that does",
            undeclared.task_id,
            undeclared.actor,
            len(entries) - entries.index(undeclared) - 1,
        )
        entries = entries[: entries.index(undeclared)]
    pipe = broker.client.pipeline(transaction=False)
    for entry in entries:
        pipe.exists(records.key(entry.task_id))
    done: list[str] = []
    superseded: dict[str, str] = {}
    try:
        for entry, exists in zip(entries, pipe.execute(), strict=True):
            done.append(entry.task_id)
            if exists:
                outcome.already_sent += 1
                continue
            message: dramatiq.Message[Any] = dramatiq.Message.decode(entry.body.encode())
            if entry.idempotency:
                claim_key, fingerprint, ttl_s = entry.idempotency.split(" ")
                broker.client.set(claim_key, fingerprint, nx=True, ex=int(ttl_s))
            try:
                broker.enqueue(message, delay=_remaining_delay_ms(entry))
            except DuplicateJob as duplicate:
                superseded[entry.task_id] = duplicate.existing_task_id
                continue
            outcome.sent += 1
    finally:
        # Even when Redis went away again mid-batch: what was sent is marked (what was not is
        # retried next pass; a job sent but not marked is found by its record then).
        deferred.mark_forwarded(engine, done, superseded=superseded)
    outcome.superseded += len(superseded)
    outcome.superseded_ids.update(superseded)


def _remaining_delay_ms(entry: Any) -> int | None:
    if not entry.delay_ms:
        return None
    accepted = entry.accepted_at.replace(tzinfo=entry.accepted_at.tzinfo or UTC)
    waited_ms = (datetime.now(UTC) - accepted).total_seconds() * 1000
    remaining = int(entry.delay_ms - waited_ms)
    return remaining if remaining > 0 else None


def deferred_record(engine: Engine, task_id: str) -> JobRecord | None:
    """What the journal says about a deferred job that is not (or no longer) in Redis: PENDING
    while it waits for the forwarder, REVOKED when the same work was accepted directly."""
    try:
        entry = deferred.lookup(engine, task_id)
    except SQLAlchemyError as failure:  # the database away too: answer as without it
        logger.warning("deferred job %s not looked up: %s", task_id, failure)
        return None
    if entry is None or (entry.forwarded_at is not None and entry.superseded_by is None):
        return None
    job = REGISTRY.get(entry.actor)
    redact = job.options.get("redact", ()) if job is not None else ()
    kwargs = dramatiq.Message.decode(entry.body.encode()).kwargs
    accepted_ms = int(entry.accepted_at.timestamp() * 1000)
    superseded: dict[str, Any] | None = None
    if entry.superseded_by:
        superseded = {
            "type": "Superseded",
            "message": f"the same job (uniqueness key) was accepted as task {entry.superseded_by} "
            "once Redis was back; that task does the work",
        }
    return JobRecord(
        task_id=entry.task_id,
        task_name=entry.actor,
        queue=entry.queue,
        state=State.REVOKED if entry.superseded_by else State.PENDING,
        args=redact_payload(kwargs, extra=redact),
        enqueued_at=accepted_ms,
        completed_at=accepted_ms if entry.superseded_by else None,
        eta=accepted_ms + entry.delay_ms if entry.delay_ms else None,
        error=superseded,
    )


class SubmitOptions(TypedDict, total=False):
    """What an enqueue route passes `Outbox.submit` and `AsyncOutbox.submit` besides the job and
    its payload (`Job.submit`'s keywords)."""

    delay_ms: int | None
    idempotency_key: str | None
    idempotency_ttl_s: Required[int]
    callback_url: str | None
    priority_class: str | None


class Outbox:
    """The enqueue path of a web process: Redis, or the database journal while Redis is away."""

    def __init__(
        self,
        *,
        broker: Any,
        records: JobRecords,
        engine: Engine,
        max_jobs: int,
        drain_poll_s: float = DRAIN_POLL_S,
    ) -> None:
        self.broker = broker
        self.records = records
        self.engine = engine
        self.max_jobs = max_jobs
        self.drain_poll_s = drain_poll_s
        #: True from this process's first deferral until its drain finds nothing pending.
        self.deferring = False
        self._deferrals = 0
        self._lock = threading.Lock()
        self._drainer: threading.Thread | None = None

    def submit(
        self, job: Job[Any], payload: BaseModel, **options: Unpack[SubmitOptions]
    ) -> Submitted:
        if not self.deferring:
            try:
                return job.submit(payload, **options)
            except REDIS_ERRORS as error:
                self.redis_failed(job, error)
        return self.defer_or_fail(job, payload, **options)

    def redis_failed(self, job: Job[Any], error: Exception) -> None:
        """Re-raise a Redis error when deferring is off (MAX_JOBS 0); else say it defers."""
        if self.max_jobs <= 0:
            raise error
        logger.warning("Redis unreachable (%s): deferring %s", error, job.name)

    def defer_or_fail(self, job: Job[Any], payload: BaseModel, **options: Any) -> Submitted:
        """Once Redis failed (or while deferring): into the journal, or BrokerUnavailable when
        the database cannot be reached either. `message=`: the message Redis may have got."""
        try:
            return self.defer(job, payload, **options)
        except SQLAlchemyError as error:
            if self.deferring:
                # Deferring only to keep order behind earlier deferrals: Redis may well answer.
                options.pop("message", None)
                try:
                    return job.submit(payload, **options)
                except REDIS_ERRORS:
                    pass
            raise BrokerUnavailable(
                "neither the job broker (Redis) nor the database can be reached, so the job was "
                f"not accepted ({type(error).__name__}). Retry in a few seconds."
            ) from None

    def defer(
        self,
        job: Job[Any],
        payload: BaseModel,
        *,
        delay_ms: int | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int,
        callback_url: str | None = None,
        priority_class: str | None = None,
        message: dramatiq.Message[Any] | None = None,
    ) -> Submitted:
        # The class travels in the message's options: the forwarder sends it to its class's list.
        # A message given is one a timed-out enqueue sent: if Redis ran it after all, the
        # forwarder finds its record and does not send it twice.
        message = message or job.message(
            payload, priority_class=priority_class, **callback_option(callback_url)
        )
        idempotency = fingerprint = None
        if idempotency_key is not None:
            message = job.keyed(message, idempotency_key)
            claim_key, fingerprint = job.idempotency_claim(message, idempotency_key)
            idempotency = f"{claim_key} {fingerprint} {idempotency_ttl_s}"
        unique = message.options.get("unique_key")
        deferral = deferred.Deferral(
            task_id=message.message_id,
            actor=job.name,
            queue=q_name(message.queue_name),
            body=message.encode().decode(),
            unique_key=f"{job.name}:{unique}" if unique else None,
            idempotency=idempotency,
            delay_ms=delay_ms,
            client=message.options.get("client"),
        )
        held = deferred.defer(self.engine, deferral, max_jobs=self.max_jobs)
        with self._lock:
            self._deferrals += 1
            self.deferring = True
            if self._drainer is None:
                self._drainer = threading.Thread(
                    target=self._drain, name="deferred-drain", daemon=True
                )
                self._drainer.start()
        if held is None:
            return Submitted(message.message_id, deferred=True)
        if (
            fingerprint is not None
            and held.task_id == message.message_id
            and held.idempotency is not None
            and held.idempotency.split(" ")[1] != fingerprint
        ):
            raise Conflict(
                f"Idempotency-Key {idempotency_key!r} was already used for {job.name} with a "
                "different request; use a new key for a new request"
            )
        return Submitted(held.task_id, duplicate=True, deferred=held.pending)

    def _drain(self) -> None:
        """Until nothing this process deferred is pending: wait for Redis, then forward."""
        while True:
            time.sleep(self.drain_poll_s)
            seen = self._deferrals
            try:
                self.broker.client.ping()
                outcome = forward(self.broker, self.records, self.engine)
            except (*REDIS_ERRORS, SQLAlchemyError) as error:
                logger.debug("deferred jobs wait: %s", error)
                continue
            except Exception:  # never let the thread die with jobs pending
                logger.exception("forwarding deferred jobs failed; retrying")
                continue
            with self._lock:
                if outcome.drained and seen == self._deferrals:
                    self.deferring = False
                    self._drainer = None
                    return


_outboxes: dict[int, Outbox] = {}


def outbox_of(broker: Any, records: JobRecords, engine: Engine, *, max_jobs: int) -> Outbox:
    """The outbox of this process for `broker` (one per broker, built once)."""
    found = _outboxes.get(id(broker))
    if found is None:
        found = _outboxes[id(broker)] = Outbox(
            broker=broker, records=records, engine=engine, max_jobs=max_jobs
        )
    return found
