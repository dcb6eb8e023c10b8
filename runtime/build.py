"""The only place that configures Dramatiq: the Redis broker and its middleware, from Settings.

Middleware order matters. Before-hooks run in list order, after-hooks in reverse:
- Uniqueness precedes JobTracking so a duplicate never creates a record;
- Abortable and JobTracking run before the actor so cancelled jobs are skipped;
- JobTracking, Journal and Uniqueness precede PolicyRetries so their after-hooks see its retry
  decision.
The broker is RobustRedisBroker (runtime/consumer.py): Dramatiq's Redis broker with its consumer
failure modes fixed (malformed and oversized messages, stalls, lost delayed messages).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
import orjson
from dramatiq.broker import MessageProxy
from dramatiq.encoder import Encoder, MessageData
from dramatiq.errors import DecodeError
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    GroupCallbacks,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend as ResultsBackend
from dramatiq_abort.backends import RedisBackend as AbortBackend
from sqlalchemy import Engine

from domain.platform import keys, sealing
from domain.platform.db import make_engine
from domain.platform.settings import Settings
from runtime.connections import check_sentinels, redis_client
from runtime.consumer import RobustRedisBroker
from runtime.errors import NotSetUp
from runtime.job_records import JobRecords
from runtime.jobs import bind_all
from runtime.middleware.abort import RunningAbortable
from runtime.middleware.batching import Batching
from runtime.middleware.callbacks import FinalCallbacks
from runtime.middleware.cpu_pin import CpuPin
from runtime.middleware.debounce import Debounce
from runtime.middleware.handover import Handover
from runtime.middleware.heartbeat import WorkerHeartbeat
from runtime.middleware.job_records import JobTracking
from runtime.middleware.journal import Journal
from runtime.middleware.metrics import CanonicalPrometheus, configure_prometheus
from runtime.middleware.recycle import Recycle
from runtime.middleware.result_cache import ResultCache
from runtime.middleware.results import quiet_results
from runtime.middleware.retries import PolicyRetries
from runtime.middleware.scheduled_runs import ScheduledRuns
from runtime.middleware.soft_time_limit import SoftTimeLimit
from runtime.middleware.uniqueness import Uniqueness
from runtime.middleware.workflow_inputs import WorkflowInputs
from runtime.policy import RetryPolicy

NAMESPACE = "dramatiq"


class OrjsonEncoder(Encoder):
    """Dramatiq's JSON wire format, encoded by orjson: about 10x faster than the json module on
    float-heavy payloads (a 100-sample SQAL batch is 6,400 floats), which is most of the cost
    of enqueueing one. Same errors as Dramatiq's encoder for undecodable bodies."""

    def encode(self, data: MessageData) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> MessageData:
        try:
            decoded: MessageData = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise DecodeError(f"failed to decode message {data!r:.200}", data, error) from None
        return decoded


#: How long a cancel request waits for a queued job to come up (it is also marked REVOKED).
ABORT_TTL_MS = 7 * 86_400_000
UNIQUE_TTL_MS = 6 * 3_600_000


def build_broker(settings: Settings, *, engine: Engine) -> RobustRedisBroker:
    client = redis_client(settings)
    records = JobRecords(client, retention_s=settings.job_retention_s)
    default_policy = RetryPolicy(
        max_retries=settings.default_max_retries,
        min_backoff_ms=settings.default_min_backoff_ms,
        max_backoff_ms=settings.default_max_backoff_ms,
    )
    tracking = JobTracking(
        records=records,
        dead_letter_ttl_s=settings.dead_letter_ttl_ms // 1000,
        max_worker_deaths=settings.max_worker_deaths,
        outage_patience_s=settings.redis_outage_patience_s,
    )
    middleware: list[dramatiq.Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=settings.default_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        GroupCallbacks(RateLimiterBackend(client=client)),
        RunningAbortable(backend=AbortBackend(client=client), abort_ttl=ABORT_TTL_MS),
        Uniqueness(client=client, default_ttl_ms=UNIQUE_TTL_MS, record_prefix=records.key("")),
        Debounce(client=client, record_prefix=records.key("")),
        ResultCache(client=client),
        ScheduledRuns(client=client, records=records),
        tracking,
        PolicyRetries(
            default_policy=default_policy, outage_patience_s=settings.redis_outage_patience_s
        ),
        SoftTimeLimit(),
        # Off by default: the job record keeps each result already, and no job reads another's
        # through Dramatiq (a round trip and ~340 B of Redis per job saved); an actor that feeds a
        # group or pipeline turns it on with store_results=True.
        quiet_results(
            Results(
                backend=ResultsBackend(client=client),
                store_results=False,
                result_ttl=settings.result_ttl_ms,
            )
        ),
        CanonicalPrometheus(),
        WorkerHeartbeat(client=client),
        Handover(),
    ]
    # Before PolicyRetries, like JobTracking: its after-hooks must see the retry decision.
    journal = Journal(
        engine=lambda: engine, flush_ms=settings.journal_flush_ms, enabled=settings.journal_enabled
    )
    middleware.insert(middleware.index(tracking) + 1, journal)
    # Also before PolicyRetries: a failure is final only once it has decided not to retry.
    middleware.insert(middleware.index(journal) + 1, FinalCallbacks())
    middleware.insert(middleware.index(journal) + 1, WorkflowInputs(records=records))
    # After JobTracking too: a run reads its items once its record says STARTED.
    middleware.insert(
        middleware.index(journal) + 1, Batching(client=client, record_prefix=records.key(""))
    )
    # Before any middleware whose before_worker_boot starts a thread: each is pinned with it.
    middleware.insert(0, CpuPin(mode=settings.worker_cpu_pin))
    if settings.worker_max_jobs_per_process or settings.worker_max_memory_mb:
        # First, so its after_worker_shutdown (which exits the process) runs last.
        middleware.insert(
            0,
            Recycle(
                max_jobs=settings.worker_max_jobs_per_process,
                max_memory_mb=settings.worker_max_memory_mb,
            ),
        )
    return RobustRedisBroker(
        client=client,
        namespace=NAMESPACE,
        middleware=middleware,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
        dead_message_ttl=settings.dead_letter_ttl_ms,
        max_message_bytes=settings.max_message_bytes,
        records=records,
        on_rejected=tracking.record_rejected,
    )


class MaskedMessages(logging.Filter):
    """Dramatiq's worker logs a failed message as `actor(args, kwargs)`: phone numbers and
    e-mail addresses would land in the logs. Log the actor and the task id instead (the job
    record holds the redacted arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.actor_name}[{arg.message_id}]"
                if isinstance(arg, dramatiq.Message | MessageProxy)
                else arg
                for arg in record.args
            )
        return True


def middleware_of(broker: dramatiq.Broker, kind: type[dramatiq.Middleware]) -> dramatiq.Middleware:
    for middleware in broker.middleware:
        if isinstance(middleware, kind):
            return middleware
    raise LookupError(f"the broker has no {kind.__name__} middleware")


@dataclass(frozen=True)
class Runtime:
    """What `setup` built for this process: the settings it was given, the broker, the engine."""

    settings: Settings
    broker: RobustRedisBroker
    engine: Engine

    @property
    def records(self) -> JobRecords:
        tracking = middleware_of(self.broker, JobTracking)
        assert isinstance(tracking, JobTracking)
        return tracking.records


_current: Runtime | None = None
_setup_lock = threading.Lock()
_setup_hooks: list[Callable[[Settings], None]] = []


def on_setup(hook: Callable[[Settings], None]) -> Callable[[Settings], None]:
    """Run `hook(settings)` in every `setup` (a job family's start-up check, say)."""
    _setup_hooks.append(hook)
    if _current is not None:
        hook(_current.settings)
    return hook


def setup(settings: Settings) -> Runtime:
    """Build the broker from `settings`, make it Dramatiq's, and bind every declared job to it.

    Every entry point calls this once (worker, API, clock, exporter, CLI, benchmarks). Calling it
    again with equal settings returns the same runtime; other settings build a new one.
    """
    global _current
    with _setup_lock:
        if _current is not None and _current.settings == settings:
            return _current
        check_sentinels(settings)
        sealing.check_keys(settings.payload_keys.get_secret_value())
        keys.check_production_keys(settings)
        configure_prometheus(settings.worker_metrics_host)
        logging.getLogger("dramatiq.worker.WorkerThread").addFilter(_MASKED)
        # Results warns on every job whose result it does not store; the job record keeps it.
        logging.getLogger("dramatiq.results.middleware.Results").setLevel(logging.ERROR)
        dramatiq.set_encoder(OrjsonEncoder())
        engine = make_engine(settings.database_url)
        broker = build_broker(settings, engine=engine)
        dramatiq.set_broker(broker)
        bind_all(broker, settings)
        _current = Runtime(settings=settings, broker=broker, engine=engine)
        for hook in _setup_hooks:
            hook(settings)
        return _current


def current() -> Runtime:
    """The runtime `setup` built in this process."""
    if _current is None:
        raise NotSetUp("the job runtime is not set up: call runtime.setup(settings) first")
    return _current


_MASKED = MaskedMessages()
