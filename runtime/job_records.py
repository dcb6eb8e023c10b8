"""Job records: the state of every job, kept in Redis under its message id (DESIGN "A job's life").

A record is a hash `gaveurs:jobs:job:{task_id}` plus one sorted set per state and one of all jobs,
so listing by state and counting are cheap. Every transition is one Lua call (one round trip) that
orders events by (epoch, rank): a late write never moves a record backwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from runtime.batching import WriteBatcher
from runtime.direct import ThreadScripts
from runtime.scripts import lua, with_transition

KEY_PREFIX = "gaveurs:jobs:"
# Redrives restart the retry count; the epoch keeps ordering events across them.
EPOCH_PER_REDRIVE = 10_000
MAX_RESULT_BYTES = 64 * 1024
#: numpy values from ML jobs, non-string keys; anything else unknown becomes its str().
RESULT_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
MAX_TRACEBACK_CHARS = 4000


class State(StrEnum):
    """States shown to clients, as the source documents name them."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


ACTIVE_STATES = (State.PENDING, State.RETRY, State.STARTED)
RANK = {
    State.PENDING: 0,
    State.RETRY: 0,
    State.STARTED: 1,
    State.SUCCESS: 2,
    State.FAILURE: 2,
    State.REVOKED: 3,
}


def now_ms() -> int:
    return int(time.time() * 1000)


def epoch_of(options: Mapping[str, Any]) -> int:
    """The ordering epoch of a message: redrives first, then retries."""
    return int(options.get("redrives", 0)) * EPOCH_PER_REDRIVE + int(options.get("retries", 0))


@dataclass(frozen=True)
class Transition:
    """What one transition did: the record's state afterwards, whether this call changed it, and
    how many earlier deliveries of the same attempt never finished (their worker died)."""

    state: State
    lost_runs: int = 0
    applied: bool = True


@dataclass(frozen=True)
class JobRecord:
    """A job record as read back from Redis."""

    task_id: str
    task_name: str
    queue: str
    state: State
    progress: int = 0
    progress_note: str = ""
    attempts: int = 0
    args: dict[str, Any] = field(default_factory=dict)
    enqueued_at: int | None = None
    started_at: int | None = None
    completed_at: int | None = None
    eta: int | None = None
    worker: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    unique_key: str | None = None
    dead_letter_id: str | None = None
    failure_reason: str | None = None
    redrives: int = 0
    lost_runs: int = 0
    #: The API client (or "scheduler", "cli") that submitted the job.
    client: str | None = None
    #: The last attempts' ends, oldest first (lua/history_fn.lua): attempt, outcome, started_at,
    #: ended_at, worker, error_type, error_message, retry_at.
    attempt_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """Each attempt's end, oldest first: the stored log, or for a job that succeeded at its
        first attempt (which stores none, lua/history_fn.lua), that attempt from the record."""
        if self.attempt_log or self.state != State.SUCCESS or not self.started_at:
            return self.attempt_log
        only = {"attempt": self.attempts, "outcome": "SUCCESS", "started_at": self.started_at}
        return [{**only, "ended_at": self.completed_at, "worker": self.worker}]

    @classmethod
    def from_hash(cls, task_id: str, raw: Mapping[bytes, bytes]) -> JobRecord:
        data = {k.decode(): v.decode() for k, v in raw.items()}

        def as_int(name: str) -> int | None:
            value = data.get(name)
            return int(value) if value not in (None, "") else None

        def as_json(name: str) -> Any:
            value = data.get(name)
            return json.loads(value) if value else None

        return cls(
            task_id=task_id,
            task_name=data.get("task_name", ""),
            queue=data.get("queue", ""),
            state=State(data.get("state", "PENDING")),
            progress=as_int("progress") or 0,
            progress_note=data.get("progress_note", ""),
            attempts=as_int("attempts") or 0,
            args=as_json("args") or {},
            enqueued_at=as_int("enqueued_at"),
            started_at=as_int("started_at"),
            completed_at=as_int("completed_at"),
            eta=as_int("eta"),
            worker=data.get("worker") or None,
            result=as_json("result"),
            error=as_json("error"),
            unique_key=data.get("unique_key") or None,
            dead_letter_id=data.get("dead_letter_id") or None,
            failure_reason=data.get("failure_reason") or None,
            redrives=as_int("redrives") or 0,
            lost_runs=as_int("lost_runs") or 0,
            client=data.get("client") or None,
            attempt_log=as_json("attempt_log") or [],
        )


def encode_result(result: Any) -> str:
    """Results are small JSON; a large one is replaced by a note instead of bloating Redis."""
    data = orjson.dumps(result, default=str, option=RESULT_OPTIONS)
    if len(data) > MAX_RESULT_BYTES:
        return json.dumps({"truncated": True, "detail": f"result larger than {MAX_RESULT_BYTES} B"})
    return data.decode()


def encode_error(exception: BaseException, traceback_text: str = "") -> str:
    return json.dumps(
        {
            "type": type(exception).__name__,
            "message": str(exception),
            "traceback": traceback_text[-MAX_TRACEBACK_CHARS:],
        },
        ensure_ascii=False,
    )


#: A state as the scripts answer it (a dict lookup: State(...) costs an Enum call per write).
_STATES = {state.value.encode(): state for state in State}


def _parsed(outcome: Any) -> Transition | None:
    current, lost_runs, applied = outcome
    if not current:
        return None
    return Transition(_STATES[current], int(lost_runs), bool(applied))


class JobRecords:
    """Reads and writes job records; one instance per Redis client."""

    def __init__(self, client: redis.Redis, *, retention_s: int, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.retention_s = retention_s
        self.prefix = prefix
        self._transition = client.register_script(with_transition("transition"))
        self._settle = client.register_script(with_transition("settle", "settle_fn"))
        self._enqueue = client.register_script(with_transition("enqueue"))
        self._direct = ThreadScripts(client)
        self.writes = WriteBatcher(
            self._direct, client.register_script(with_transition("batch", "settle_fn"))
        )
        self._progress = client.register_script(lua("progress"))

    def key(self, task_id: str) -> str:
        return f"{self.prefix}job:{task_id}"

    def transition(self, task_id: str, state: State, **options: Any) -> State | None:
        """Apply one transition; returns the record's state afterwards (None if no record).

        Options are `apply`'s; `client` may be a pipeline, to batch this call with others in
        one round trip.
        """
        outcome = self.apply(task_id, state, **options)
        return outcome.state if outcome else None

    def arguments(
        self,
        task_id: str,
        state: State,
        *,
        epoch: int,
        mode: str = "any",
        ttl_s: int | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """The transition's script arguments (see lua/transition_fn.lua)."""
        argv: list[Any] = [
            task_id,
            state.value,
            epoch,
            RANK[state],
            now_ms(),
            ttl_s or self.retention_s,
            mode,
            self.retention_s * 1000,
        ]
        for name, value in (fields or {}).items():
            argv.extend((name, "" if value is None else value))
        return argv

    def apply(
        self, task_id: str, state: State, *, client: Any = None, **options: Any
    ) -> Transition | None:
        """`transition`, saying also whether it applied and how many deliveries were lost."""
        argv = self.arguments(task_id, state, **options)
        if client is not None and client is not self.client:
            keys = [self.key(task_id), self.prefix]
            self._transition(keys=keys, args=argv, client=client)  # queued on a pipeline
            return None
        return self.apply_arguments(argv)

    def apply_arguments(self, argv: list[Any]) -> Transition | None:
        """The transition whose script arguments `arguments` built (sent again as they were: a
        STARTED keeps its delivery token, so a retry of a call that applied is a no-op)."""
        return _parsed(self.writes.run("transition", *self._transition_call(argv)))

    def settle(self, keys: Sequence[str], head: list[Any], argv: list[Any]) -> Transition | None:
        """Ack or dead-letter a message (`keys`, `head`: see lua/settle.lua) and apply the
        transition `argv` to its record, in one round trip."""
        return _parsed(self.writes.run("settle", *self._settle_call(keys, head, argv)))

    def settle_and_start(
        self, keys: Sequence[str], head: list[Any], argv: list[Any], start: list[Any]
    ) -> tuple[Transition | None, Transition | None]:
        """`settle`, and the transition `start` (the worker thread's next job's STARTED) in the
        same round trip. A settle Redis refuses raises; a refused start is None (not known)."""
        settled, started = self.writes.run_parts(
            (
                ("settle", *self._settle_call(keys, head, argv)),
                ("transition", *self._transition_call(start)),
            )
        )
        if isinstance(settled, redis.ResponseError):
            raise settled
        known = None if isinstance(started, redis.ResponseError) else _parsed(started)
        return _parsed(settled), known

    def _transition_call(self, argv: list[Any]) -> tuple[Script, list[Any], list[Any]]:
        return self._transition, [self.key(argv[0]), self.prefix], argv

    def _settle_call(
        self, keys: Sequence[str], head: list[Any], argv: list[Any]
    ) -> tuple[Script, list[Any], list[Any]]:
        return self._settle, [self.key(argv[0]), self.prefix, *keys], [*head, *argv]

    def enqueue(self, keys: list[str], head: list[Any], argv: list[Any]) -> None:
        """Push a message (`keys`, `head`: see lua/enqueue.lua) and create the record `argv`."""
        self._direct.run(self._enqueue, *self.enqueue_call(keys, head, argv))

    def enqueue_call(
        self, keys: list[str], head: list[Any], argv: list[Any]
    ) -> tuple[list[Any], list[Any]]:
        """The keys and arguments of `enqueue`'s script (lua/enqueue.lua, `enqueue_script`)."""
        return [self.key(argv[0]), self.prefix, *keys], [*head, *argv]

    @property
    def enqueue_script(self) -> str:
        return str(self._enqueue.script)

    def channel(self, task_id: str) -> str:
        """The pub/sub channel told of each transition and progress of the job (lua/)."""
        return f"{self.prefix}events:{task_id}"

    def progress(self, task_id: str, pct: int, note: str) -> bool:
        keys = [self.key(task_id), self.channel(task_id)]
        return bool(self._progress(keys=keys, args=[pct, note, now_ms()]))

    def get(self, task_id: str) -> JobRecord | None:
        raw = self.client.hgetall(self.key(task_id))
        return JobRecord.from_hash(task_id, raw) if raw else None

    def get_many(self, task_ids: Iterable[str]) -> list[JobRecord]:
        ids = list(task_ids)
        pipe = self.client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(self.key(task_id))
        return [
            JobRecord.from_hash(task_id, raw)
            for task_id, raw in zip(ids, pipe.execute(), strict=True)
            if raw
        ]

    def delete(self, task_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.key(task_id))
        pipe.zrem(f"{self.prefix}all", task_id)
        for state in State:
            pipe.zrem(f"{self.prefix}state:{state.value}", task_id)
        pipe.execute()

    def trim(self, *, now: int | None = None) -> int:
        """Drop index entries older than the retention (their records have expired)."""
        cutoff = (now or now_ms()) - self.retention_s * 1000
        pipe = self.client.pipeline(transaction=False)
        for state in State:
            pipe.zremrangebyscore(f"{self.prefix}state:{state.value}", 0, cutoff)
        pipe.zremrangebyscore(f"{self.prefix}all", 0, cutoff)
        return sum(int(n) for n in pipe.execute())

    def counts(self) -> dict[State, int]:
        pipe = self.client.pipeline(transaction=False)
        for state in State:
            pipe.zcard(f"{self.prefix}state:{state.value}")
        return dict(zip(State, (int(n) for n in pipe.execute()), strict=True))

    def list(
        self,
        *,
        states: Iterable[State] | None = None,
        queue: str | None = None,
        actor: str | None = None,
        client: str | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Most recent first. Filters on queue/actor/client read pages of ids until `limit`
        match."""
        index_keys = (
            [f"{self.prefix}state:{s.value}" for s in states] if states else [f"{self.prefix}all"]
        )
        found: list[JobRecord] = []
        page = max(limit * 2, 100)
        offsets = dict.fromkeys(index_keys, 0)
        candidates: list[tuple[float, str]] = []
        exhausted: set[str] = set()
        while len(found) < limit and len(exhausted) < len(index_keys):
            for index_key in index_keys:
                if index_key in exhausted:
                    continue
                start = offsets[index_key]
                rows = self.client.zrevrange(index_key, start, start + page - 1, withscores=True)
                offsets[index_key] = start + page
                if len(rows) < page:
                    exhausted.add(index_key)
                candidates.extend((score, member.decode()) for member, score in rows)
            candidates.sort(reverse=True)
            batch, candidates = candidates, []
            for record in self.get_many(task_id for _, task_id in batch):
                if queue and record.queue != queue:
                    continue
                if actor and record.task_name != actor:
                    continue
                if client and record.client != client:
                    continue
                found.append(record)
        return found[:limit]
