"""The job runtime's public face: everything outside runtime/ imports from here, never from a
module inside it (tests/runtime/test_layout.py checks).

    import runtime
    runtime.setup(settings)                    # each entry point, once: builds the broker
    @runtime.job(queue="default", payload=P)   # a job family declares its jobs
    runtime.records().get(task_id)             # readers of what setup built

Nothing here connects or reads settings at import: `setup(settings)` does, explicitly.
"""

from __future__ import annotations

from runtime.breaker import PREFIX as BREAKER_PREFIX
from runtime.breaker import CircuitBreaker, rate_limited
from runtime.build import (
    NAMESPACE,
    Runtime,
    build_broker,
    current,
    middleware_of,
    on_setup,
    redis_client,
    setup,
)
from runtime.consumer import RobustRedisBroker
from runtime.context import (
    broker,
    chunked_session,
    current_settings,
    current_task_id,
    engine,
    flush_journal,
    progress,
    records,
    session_scope,
    soft_limit_reached,
    uniqueness,
)
from runtime.control import Control, DeadLetter, QueueStats
from runtime.errors import NotSetUp
from runtime.job_records import ACTIVE_STATES, JobRecord, JobRecords, State, now_ms
from runtime.jobs import REGISTRY, Job, Payload, Retry, Submitted, forget, job
from runtime.middleware.heartbeat import live_workers
from runtime.middleware.recycle import RECYCLE_EXIT_CODE
from runtime.middleware.scheduled_runs import (
    SCHEDULER_PREFIX,
    SKIPS_KEY,
    entry_key,
    mark_skipped,
)
from runtime.middleware.soft_time_limit import SoftTimeLimitExceeded
from runtime.middleware.uniqueness import DuplicateJob
from runtime.outage import REDIS_ERRORS, until_redis_answers
from runtime.policy import NO_RETRY, RetryPolicy
from runtime.priorities import PriorityClass
from runtime.queues import QUEUES
from runtime.reconcile import RECOVERED_KEY, reconcile

__all__ = [
    "ACTIVE_STATES",
    "BREAKER_PREFIX",
    "NAMESPACE",
    "NO_RETRY",
    "QUEUES",
    "RECOVERED_KEY",
    "RECYCLE_EXIT_CODE",
    "REDIS_ERRORS",
    "REGISTRY",
    "SCHEDULER_PREFIX",
    "SKIPS_KEY",
    "CircuitBreaker",
    "Control",
    "DeadLetter",
    "DuplicateJob",
    "Job",
    "JobRecord",
    "JobRecords",
    "NotSetUp",
    "Payload",
    "PriorityClass",
    "QueueStats",
    "Retry",
    "RetryPolicy",
    "RobustRedisBroker",
    "Runtime",
    "SoftTimeLimitExceeded",
    "State",
    "Submitted",
    "broker",
    "build_broker",
    "chunked_session",
    "current",
    "current_settings",
    "current_task_id",
    "engine",
    "entry_key",
    "flush_journal",
    "forget",
    "job",
    "live_workers",
    "mark_skipped",
    "middleware_of",
    "now_ms",
    "on_setup",
    "progress",
    "rate_limited",
    "reconcile",
    "records",
    "redis_client",
    "session_scope",
    "setup",
    "soft_limit_reached",
    "uniqueness",
    "until_redis_answers",
]
