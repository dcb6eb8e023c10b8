"""The only place that configures Dramatiq: the Redis broker and its middleware, from Settings.

Middleware order matters. Before-hooks run in list order, after-hooks in reverse:
- Uniqueness precedes JobTracking so a duplicate never creates a record;
- Abortable and JobTracking run before the actor so cancelled jobs are skipped;
- JobTracking, Journal and Uniqueness precede PolicyRetries so their after-hooks see its retry
  decision.
The broker is RobustRedisBroker (actors/consumer.py): Dramatiq's Redis broker with its consumer
failure modes fixed (malformed and oversized messages, stalls, lost delayed messages).
"""

from __future__ import annotations

import logging
import os
import tempfile

# Dramatiq's Prometheus middleware reads these at import time: bind to localhost unless told
# otherwise, and give each metrics port its own multiprocess directory so two worker processes
# on one machine never publish each other's samples.
os.environ.setdefault("dramatiq_prom_host", "127.0.0.1")
os.environ.setdefault(
    "dramatiq_prom_db",
    os.path.join(
        tempfile.gettempdir(), f"gaveurs-prom-{os.environ.get('dramatiq_prom_port', '9191')}"
    ),
)

import dramatiq  # noqa: E402
import orjson  # noqa: E402
import redis  # noqa: E402
from dramatiq.broker import MessageProxy  # noqa: E402
from dramatiq.encoder import Encoder, MessageData  # noqa: E402
from dramatiq.errors import DecodeError  # noqa: E402
from dramatiq.middleware import (  # noqa: E402
    AgeLimit,
    Callbacks,
    CurrentMessage,
    GroupCallbacks,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend  # noqa: E402
from dramatiq.results import Results  # noqa: E402
from dramatiq.results.backends import RedisBackend as ResultsBackend  # noqa: E402
from dramatiq_abort.backends import RedisBackend as AbortBackend  # noqa: E402

from actors.consumer import RobustRedisBroker  # noqa: E402
from actors.middleware.abort import RunningAbortable  # noqa: E402
from actors.middleware.handover import Handover  # noqa: E402
from actors.middleware.heartbeat import WorkerHeartbeat  # noqa: E402
from actors.middleware.job_records import JobTracking  # noqa: E402
from actors.middleware.journal import Journal  # noqa: E402
from actors.middleware.metrics import CanonicalPrometheus  # noqa: E402
from actors.middleware.retries import PolicyRetries  # noqa: E402
from actors.middleware.scheduled_runs import ScheduledRuns  # noqa: E402
from actors.middleware.soft_time_limit import SoftTimeLimit  # noqa: E402
from actors.middleware.uniqueness import Uniqueness  # noqa: E402
from actors.policy import RetryPolicy  # noqa: E402
from actors.records import JobRecords  # noqa: E402
from actors.resources import engine  # noqa: E402
from domain.settings import Settings, get_settings  # noqa: E402

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


def redis_client(settings: Settings) -> redis.Redis:
    """One client for the broker and every backend; fails fast when Redis is unreachable."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        socket_timeout=settings.redis_socket_timeout_s,
        health_check_interval=30,
    )


def build_broker(settings: Settings) -> RobustRedisBroker:
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
        ScheduledRuns(client=client, records=records),
        tracking,
        PolicyRetries(
            default_policy=default_policy, outage_patience_s=settings.redis_outage_patience_s
        ),
        SoftTimeLimit(),
        # Off by default: the job record keeps each result already, and no job reads another's
        # through Dramatiq (a round trip and ~340 B of Redis per job saved); an actor that feeds a
        # group or pipeline turns it on with store_results=True.
        Results(
            backend=ResultsBackend(client=client),
            store_results=False,
            result_ttl=settings.result_ttl_ms,
        ),
        CanonicalPrometheus(),
        WorkerHeartbeat(client=client),
        Handover(),
    ]
    # Before PolicyRetries, like JobTracking: its after-hooks must see the retry decision.
    journal = Journal(
        engine=engine, flush_ms=settings.journal_flush_ms, enabled=settings.journal_enabled
    )
    middleware.insert(middleware.index(tracking) + 1, journal)
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


logging.getLogger("dramatiq.worker.WorkerThread").addFilter(MaskedMessages())
# Results warns on every job whose result it does not store; the job record keeps it.
logging.getLogger("dramatiq.results.middleware.Results").setLevel(logging.ERROR)
dramatiq.set_encoder(OrjsonEncoder())
broker = build_broker(get_settings())
dramatiq.set_broker(broker)
