"""Typed jobs: each job declares a pydantic payload, validated when sent and again when received.

    @job(queue="default", payload=RefreshAggregates, retry=RetryPolicy(max_retries=3))
    def refresh_aggregates(payload: RefreshAggregates) -> dict: ...

    message = refresh_aggregates.send(RefreshAggregates(full=True))

A declaration needs no broker: `runtime.setup(settings)` binds every declared job to the broker
it builds (and a job declared after that is bound at once). Jobs call `progress(pct, note)` to
report how far they are, and long ones check `soft_limit_reached()` (or catch
SoftTimeLimitExceeded) to stop with their best result so far.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dramatiq
from pydantic import BaseModel, ConfigDict, ValidationError

from domain.errors import Conflict, InvalidInput, PermanentError
from domain.platform.settings import Settings
from runtime.clients import OPTION as CLIENT_OPTION
from runtime.clients import current_client
from runtime.errors import NotSetUp
from runtime.job_records import JobRecords
from runtime.middleware import result_cache
from runtime.middleware.batching import OPTION as BATCH_OPTION
from runtime.middleware.batching import Batch, Batching
from runtime.middleware.job_records import JobTracking
from runtime.middleware.result_cache import Cache
from runtime.middleware.uniqueness import DuplicateJob
from runtime.policy import RetryPolicy
from runtime.priorities import OPTION as CLASS_OPTION
from runtime.priorities import PriorityClass, parse, rank
from runtime.queues import QUEUES

P = TypeVar("P", bound=BaseModel)

#: Every job the platform knows, by actor name: the API and CLI can enqueue only these.
REGISTRY: dict[str, Job[Any]] = {}
#: The broker `runtime.setup` bound the jobs to; a job declared later is bound at once.
_bound: list[tuple[dramatiq.Broker, Settings]] = []

IDEMPOTENCY_PREFIX = "gaveurs:idempotency:"
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b3c1f0e-8a4d-4e0c-9a57-6f1d2c3b4a59")
IDEMPOTENCY_TTL_S = 86_400
IDEMPOTENCY_WAIT_S = 0.5

#: A retry policy, or a function of the settings that makes one (read when the job is bound).
Retry = RetryPolicy | Callable[[Settings], RetryPolicy]
#: A debounce window in ms, or a function of the settings that gives it (read when bound).
Window = int | Callable[[Settings], int]


class Payload(BaseModel):
    """Base of every job payload: unknown fields are refused, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _check_template(template: str, payload: type[BaseModel], option: str = "unique") -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = names - set(payload.model_fields)
    if unknown:
        raise ValueError(
            f"{option}={template!r} names {sorted(unknown)} which {payload.__name__} does not "
            "have; "
            f"use fields among {sorted(payload.model_fields)}"
        )


@dataclass(frozen=True)
class Submitted:
    """What enqueueing produced: the task id, and whether an identical job was already active."""

    task_id: str
    duplicate: bool = False
    #: Accepted while Redis was unreachable: stored in the journal until the forwarder sends it.
    deferred: bool = False
    #: Answered from a finished run on the same data (the result cache): nothing was enqueued.
    cached: bool = False
    result: Any = None


class Job(Generic[P]):
    """A job declaration with a typed payload; `send` takes the payload model, not loose kwargs.

    Its Dramatiq actor exists once `runtime.setup(settings)` has bound it to a broker.
    """

    def __init__(
        self,
        run: Callable[..., Any],
        *,
        name: str,
        queue: str,
        payload: type[P],
        unique: str | None,
        priority: int,
        options: dict[str, Any],
        retry: Retry | None,
        priority_class: PriorityClass = PriorityClass.NORMAL,
        priority_range: tuple[PriorityClass, PriorityClass] | None = None,
        debounce: str | None = None,
        debounce_ms: Window | None = None,
        cache: Cache[P] | None = None,
        batch: Batch | None = None,
    ) -> None:
        self.run = run
        self.name = name
        self.queue = queue
        self.payload = payload
        self.unique = unique
        self.priority = priority
        self.options = options
        self.retry = retry
        self.priority_class = priority_class
        #: (lowest, highest) class a request may ask for; the default class alone unless declared.
        self.priority_range = priority_range or (priority_class, priority_class)
        #: Requests with the same key within the window run once (middleware/debounce.py).
        self.debounce = debounce
        self.debounce_ms = debounce_ms
        #: Requests on unchanged data are answered from the last run (middleware/result_cache.py).
        self.cache = cache
        self._cache_ttl_ms = 0
        #: Items added within a window go out as one run (middleware/batching.py).
        self.batch = batch
        self._batch_window_ms = 0
        self._actor: dramatiq.Actor[Any, Any] | None = None

    @property
    def actor(self) -> dramatiq.Actor[Any, Any]:
        if self._actor is None:
            raise NotSetUp(
                f"job {self.name} has no broker yet: the entry point must call "
                "runtime.setup(settings) before sending jobs"
            )
        return self._actor

    def bind(self, broker: dramatiq.Broker, settings: Settings) -> None:
        """Declare this job's actor on `broker` (Dramatiq checks its options against the
        broker's middleware here, and says which option no middleware knows)."""
        options = dict(self.options)
        if self.retry is not None:
            options["retry"] = (
                self.retry if isinstance(self.retry, RetryPolicy) else (self.retry(settings))
            )
        if self.cache is not None:
            ttl = self.cache.ttl_ms
            self._cache_ttl_ms = ttl if isinstance(ttl, int) else ttl(settings)
        if self.batch is not None:
            self._batch_window_ms = self.batch.window(settings)
        if self.debounce_ms is not None:
            window = self.debounce_ms
            options["debounce"] = window if isinstance(window, int) else window(settings)
        declare = dramatiq.actor(
            actor_name=self.name,
            queue_name=self.queue,
            priority=self.priority,
            broker=broker,
            **options,
        )
        self._actor = declare(self.run)

    def records(self) -> JobRecords:
        return records_of(self.actor.broker)

    def step(self, payload: P, *, receives: str | None = None, name: str | None = None) -> Any:
        """This job as a workflow step (runtime/flows.py): `receives` names the payload field
        that gets the predecessors' outcomes; without it the step gets nothing from them."""
        from runtime.flows import Step

        if not isinstance(payload, self.payload):
            raise TypeError(f"{self.name} takes a {self.payload.__name__}, not {type(payload)}")
        return Step(self, payload, receives=receives, name=name)

    def validate(self, data: Mapping[str, Any]) -> P:
        """Parse loose input (API query, CLI params) into the payload, or raise InvalidInput."""
        try:
            payload = self.payload.model_validate(data)
        except ValidationError as error:
            raise InvalidInput(f"invalid payload for {self.name}: {error}") from None
        from runtime.flows import RuntimeFilled

        for name, info in self.payload.model_fields.items():
            filled = any(isinstance(m, RuntimeFilled) for m in info.metadata)
            if filled and getattr(payload, name):
                raise InvalidInput(
                    f"invalid payload for {self.name}: {name} is filled by the workflow "
                    "runtime (a step's receives=); send none"
                )
        return payload

    def unique_key(self, payload: P) -> str | None:
        return self.unique.format(**payload.model_dump()) if self.unique else None

    def delay_of(self, delay_ms: int | None) -> int | None:
        """A debounced job waits out its window, so the requests made meanwhile join it."""
        window = self.actor.options.get("debounce") if self.debounce else None
        return max(delay_ms or 0, window) if window else delay_ms

    def resolve_class(self, requested: str | PriorityClass | None) -> PriorityClass:
        """The class a request asked for (English or French name), or the job's default;
        InvalidInput when it is unknown or outside the job's declared range."""
        if requested is None:
            return self.priority_class
        try:
            chosen = parse(requested)
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        lowest, highest = self.priority_range
        if not rank(lowest) <= rank(chosen) <= rank(highest):
            allowed = lowest.value if lowest is highest else f"{lowest.value} to {highest.value}"
            raise InvalidInput(
                f"{self.name} may run at priority class {allowed}, not {chosen.value}"
            )
        return chosen

    def message(
        self, payload: P, *, priority_class: str | PriorityClass | None = None, **options: Any
    ) -> dramatiq.Message[Any]:
        """The message `send` would enqueue, for callers that need its id before enqueueing."""
        if not isinstance(payload, self.payload):
            raise TypeError(f"{self.name} takes a {self.payload.__name__}, not {type(payload)}")
        key = self.unique_key(payload)
        if key:
            options["unique_key"] = key
        if self.debounce:
            options["debounce_key"] = self.debounce.format(**payload.model_dump())
        chosen = self.resolve_class(priority_class)
        if chosen is not PriorityClass.NORMAL:
            options[CLASS_OPTION] = chosen.value
        client = current_client()
        if client is not None:
            options.setdefault(CLIENT_OPTION, client)
        return self.actor.message_with_options(kwargs=payload.model_dump(mode="json"), **options)

    def send(
        self,
        payload: P,
        *,
        delay_ms: int | None = None,
        priority_class: str | PriorityClass | None = None,
    ) -> dramatiq.Message[Any]:
        message = self.message(payload, priority_class=priority_class)
        try:
            return self.actor.broker.enqueue(message, delay=self.delay_of(delay_ms))
        except DuplicateJob as duplicate:
            if not self.debounce:
                raise
            # Joined the pending run: the caller gets its message, as the API gets its id.
            return dataclasses.replace(message, message_id=duplicate.existing_task_id)

    def submit(
        self,
        payload: P,
        *,
        delay_ms: int | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int = IDEMPOTENCY_TTL_S,
        callback_url: str | None = None,
        priority_class: str | PriorityClass | None = None,
    ) -> Submitted:
        """Send, or return the active job with the same uniqueness key.

        With an `idempotency_key` (a client's retry of the same request), the task id is derived
        from the key: the first call creates the job, later ones return it, and a retry after a
        failed attempt (Redis down: 503) creates it then, once. Reusing a key for a different
        payload is refused.
        """
        options = callback_option(callback_url)
        if self.cache is not None:
            hit, options = self._cached(payload, options)
            if hit is not None:
                return hit
        message = self.message(payload, priority_class=priority_class, **options)
        if idempotency_key is not None:
            message = self.keyed(message, idempotency_key)
            existing = self._claim_idempotency(message, idempotency_key, idempotency_ttl_s)
            if existing is not None:
                return existing
        try:
            enqueued = self.actor.broker.enqueue(message, delay=self.delay_of(delay_ms))
            return Submitted(enqueued.message_id)
        except DuplicateJob as duplicate:
            return Submitted(duplicate.existing_task_id, duplicate=True)

    def add(self, item: BaseModel, *, payload: P | None = None) -> Submitted:
        """A batched job's item: it joins the run pending for this job, or opens one (enqueued
        to start at the end of the window). The answer is the task id of the run that takes it
        (`duplicate` when the run existed)."""
        if self.batch is None:
            raise TypeError(f"{self.name} is not a batched job (declare it with batch=Batch(...))")
        field = self.batch.field
        item_json = item.model_dump(mode="json")
        base = payload if payload is not None else self.payload()
        try:  # the payload's model checks the item like any element of the field
            self.payload.model_validate({**base.model_dump(mode="json"), field: [item_json]})
        except ValidationError as error:
            raise InvalidInput(f"invalid item for {self.name}: {error}") from None
        message = self.message(base, **{BATCH_OPTION: field})
        task_id, new = batching_of(self.actor.broker).add(
            self.name,
            task_id=message.message_id,
            item=item_json,
            window_ms=self._batch_window_ms,
            max_items=self.batch.max_items,
        )
        if new:
            self.actor.broker.enqueue(message, delay=self._batch_window_ms)
        return Submitted(task_id, duplicate=not new)

    def _cached(
        self, payload: P, options: dict[str, Any]
    ) -> tuple[Submitted | None, dict[str, Any]]:
        """The finished run that answers this payload on unchanged data, or the message options
        that let this run be stored for the next request."""
        assert self.cache is not None
        cache_key = self.cache.key.format(**payload.model_dump())
        version = self.cache.version(payload)
        client = getattr(self.actor.broker, "client")  # noqa: B009  (the Redis broker's)
        hit = result_cache.lookup(
            client, self.records(), result_cache.key_of(self.name, cache_key), version
        )
        if hit is not None:
            record = hit.record
            return Submitted(record.task_id, duplicate=True, cached=True, result=record.result), {}
        stored = {"cache_key": cache_key, "cache_version": version, "cache_ttl": self._cache_ttl_ms}
        return None, {**options, **stored}

    def keyed(self, message: dramatiq.Message[Any], key: str) -> dramatiq.Message[Any]:
        """The message with its task id derived from the key, the same on every retry."""
        task_id = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{self.name}:{key}"))
        return dataclasses.replace(message, message_id=task_id)

    def idempotency_claim(self, message: dramatiq.Message[Any], key: str) -> tuple[str, str]:
        """The Redis key that records an Idempotency-Key's first use, and the request's
        fingerprint stored there (a reuse with another payload is refused)."""
        body = json.dumps(message.kwargs, sort_keys=True, default=str).encode()
        fingerprint = hashlib.sha256(body).hexdigest()[:32]
        scope = f"{self.name}:{key}"
        return IDEMPOTENCY_PREFIX + hashlib.sha256(scope.encode()).hexdigest(), fingerprint

    def _claim_idempotency(
        self, message: dramatiq.Message[Any], key: str, ttl_s: int
    ) -> Submitted | None:
        """None when this call must send the message; else the Submitted to answer."""
        task_id = message.message_id
        claim_key, fingerprint = self.idempotency_claim(message, key)
        client = getattr(self.actor.broker, "client")  # noqa: B009  (the Redis broker's)
        store = self.records()
        pipe = client.pipeline(transaction=False)
        pipe.set(claim_key, fingerprint, nx=True, ex=ttl_s)
        pipe.get(claim_key)
        pipe.exists(store.key(task_id))
        claimed, stored, exists = pipe.execute()
        if claimed:
            return None
        if stored is not None and stored.decode() != fingerprint:
            raise Conflict(
                f"Idempotency-Key {key!r} was already used for {self.name} with a different "
                "request; use a new key for a new request"
            )
        # Claimed by an earlier attempt: it created the job, is creating it right now (a
        # concurrent retry: give it a moment), or failed before it could (send it now).
        deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
        while not exists and time.monotonic() < deadline:
            time.sleep(0.02)
            exists = client.exists(store.key(task_id))
        return Submitted(task_id, duplicate=True) if exists else None


def callback_option(url: str | None) -> dict[str, str]:
    """The message option the FinalCallbacks middleware reads (runtime/middleware/callbacks.py)."""
    return {"callback_url": url} if url else {}


def job(
    *,
    queue: str,
    payload: type[P],
    retry: Retry | None = None,
    time_limit_ms: int | None = None,
    soft_time_limit_ms: int | None = None,
    unique: str | None = None,
    unique_ttl_ms: int | None = None,
    redact: tuple[str, ...] = (),
    throws: tuple[type[BaseException], ...] = (PermanentError,),
    priority: int = 0,
    actor_name: str | None = None,
    max_age_ms: int | None = None,
    journal: bool = True,
    max_worker_deaths: int | None = None,
    store_results: bool = False,
    priority_class: str = "normal",
    priority_range: tuple[str, str] | None = None,
    debounce: str | None = None,
    debounce_ms: Window | None = None,
    cache: Cache[P] | None = None,
    batch: Batch | None = None,
) -> Callable[[Callable[[P], Any]], Job[P]]:
    """Declare a job. Bad declarations fail at import time with a message saying how to fix them.

    `priority_class` is the job's default class (runtime/priorities.py); `priority_range`
    (lowest, highest) lets a request choose another class within it. `debounce` (a key
    template like `unique`) with `debounce_ms` coalesces the requests made within the window
    into one run (runtime/middleware/debounce.py). `cache` answers a request on unchanged data
    from the last finished run (runtime/middleware/result_cache.py). `batch` gathers the items
    added within a window into one run (runtime/middleware/batching.py)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}: use one of {QUEUES}")
    if not (isinstance(payload, type) and issubclass(payload, BaseModel)):
        raise TypeError("payload= takes a pydantic BaseModel subclass")
    if soft_time_limit_ms and time_limit_ms and soft_time_limit_ms >= time_limit_ms:
        raise ValueError("soft_time_limit_ms must be shorter than time_limit_ms")
    unknown_redact = set(redact) - set(payload.model_fields)
    if unknown_redact:
        raise ValueError(f"redact names unknown fields {sorted(unknown_redact)}")
    if unique:
        _check_template(unique, payload)
    if (debounce is None) != (debounce_ms is None):
        raise ValueError("debounce= (the key template) and debounce_ms= (the window) go together")
    if debounce is not None:
        _check_template(debounce, payload, "debounce")
        if unique:
            raise ValueError(
                "a job is either unique= (one queued or running) or debounce= (one pending run "
                "per window), not both"
            )
        if isinstance(debounce_ms, int) and debounce_ms <= 0:
            raise ValueError("debounce_ms must be a positive number of milliseconds")
    if cache is not None:
        _check_template(cache.key, payload, "cache key")
    if batch is not None:
        if batch.field not in payload.model_fields:
            raise ValueError(
                f"batch field {batch.field!r} is not a field of {payload.__name__} "
                f"(fields: {sorted(payload.model_fields)})"
            )
        if unique or debounce:
            raise ValueError("a batched job gathers its own runs: no unique= or debounce=")
        if batch.max_items < 1 or (isinstance(batch.window_ms, int) and batch.window_ms <= 0):
            raise ValueError("batch needs a positive window_ms and max_items")
    default_class = parse(priority_class)
    class_range = None
    if priority_range is not None:
        class_range = (parse(priority_range[0]), parse(priority_range[1]))
        if not rank(class_range[0]) <= rank(default_class) <= rank(class_range[1]):
            raise ValueError(
                f"priority_range={priority_range} must be (lowest, highest) and include "
                f"priority_class={default_class.value!r}"
            )

    def decorate(fn: Callable[[P], Any]) -> Job[P]:
        name = actor_name or fn.__name__
        if name in REGISTRY:
            raise ValueError(f"a job named {name!r} is already declared; give this one actor_name=")

        def run(**kwargs: Any) -> Any:
            try:
                parsed = payload.model_validate(kwargs)
            except ValidationError as error:
                raise InvalidInput(f"invalid payload for {name}: {error}") from None
            return fn(parsed)

        run.__name__ = name
        run.__qualname__ = name
        run.__doc__ = fn.__doc__
        options: dict[str, Any] = {"throws": throws, "redact": redact, "journal": journal}
        if max_worker_deaths is not None:
            options["max_worker_deaths"] = max_worker_deaths
        if store_results:  # for a job whose result a Dramatiq group or pipeline reads
            options["store_results"] = True
        if time_limit_ms is not None:
            options["time_limit"] = time_limit_ms
        if soft_time_limit_ms is not None:
            options["soft_time_limit"] = soft_time_limit_ms
        if unique_ttl_ms is not None:
            options["unique_ttl"] = unique_ttl_ms
        if max_age_ms is not None:
            options["max_age"] = max_age_ms
        declared = Job(
            run,
            name=name,
            queue=queue,
            payload=payload,
            unique=unique,
            priority=priority,
            options=options,
            retry=retry,
            priority_class=default_class,
            priority_range=class_range,
            debounce=debounce,
            debounce_ms=debounce_ms,
            cache=cache,
            batch=batch,
        )
        REGISTRY[name] = declared
        for broker, settings in _bound:
            declared.bind(broker, settings)
        return declared

    return decorate


def bind_all(broker: dramatiq.Broker, settings: Settings) -> None:
    """Bind every declared job to `broker`, and the jobs declared from now on too."""
    _bound[:] = [(broker, settings)]
    for declared in REGISTRY.values():
        declared.bind(broker, settings)


def forget(name: str) -> None:
    """Drop a declaration (throw-away jobs of tests and benchmarks)."""
    declared = REGISTRY.pop(name, None)
    if declared is not None and declared._actor is not None:
        declared._actor.broker.actors.pop(name, None)


def batching_of(broker: dramatiq.Broker) -> Batching:
    for middleware in broker.middleware:
        if isinstance(middleware, Batching):
            return middleware
    raise LookupError("the broker has no Batching middleware")


def records_of(broker: dramatiq.Broker) -> JobRecords:
    for middleware in broker.middleware:
        if isinstance(middleware, JobTracking):
            return middleware.records
    raise LookupError("the broker has no JobTracking middleware")
