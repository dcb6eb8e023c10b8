"""The job runtime's public face: everything outside runtime/ imports from here, never from a
module inside it (tests/runtime/test_layout.py checks).

    import runtime
    runtime.setup(settings)                    # each entry point, once: builds the broker
    @runtime.job(queue="default", payload=P)   # a job family declares its jobs
    runtime.records().get(task_id)             # readers of what setup built
    runtime.submit_workflow(runtime.chord(runtime.group([...]), callback))  # workflows

Nothing here connects or reads settings at import: `setup(settings)` does, explicitly. Names are
imported on first use, so a process that needs one piece (the worker's forked metrics server)
does not load the whole runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.activity import (
        Minute,
        forget_minutes,
        merged_durations,
        percentile_ms,
        recent_minutes,
    )
    from runtime.async_enqueue import AsyncOutbox, async_outbox
    from runtime.audit import audit_key, audit_processing
    from runtime.breaker import PREFIX as BREAKER_PREFIX
    from runtime.breaker import CircuitBreaker, rate_limited
    from runtime.build import (
        NAMESPACE,
        Runtime,
        build_broker,
        current,
        middleware_of,
        on_setup,
        setup,
    )
    from runtime.clients import act_as, acting_as, current_client
    from runtime.connections import (
        SentinelMisconfigured,
        SentinelUnreachable,
        async_redis_client,
        check_sentinels,
        describe_redis,
        redis_client,
        sentinel_master,
    )
    from runtime.consumer import RobustRedisBroker
    from runtime.context import (
        broker,
        cancel_workflow,
        chunked_session,
        current_settings,
        current_task_id,
        engine,
        flush_journal,
        outbox,
        progress,
        records,
        session_scope,
        soft_limit_reached,
        submit_workflow,
        uniqueness,
        workflows,
    )
    from runtime.control import Control, DeadLetter, QueueStats
    from runtime.deferred import FORWARDED_KEY, Forwarded, Outbox, deferred_record, forward
    from runtime.erasure import scrub_redis
    from runtime.errors import NotSetUp
    from runtime.flows import (
        MAX_STEPS,
        FinishedWorkflow,
        Step,
        StepResult,
        StepResults,
        StepSpec,
        Workflows,
        WorkflowSpec,
        WorkflowSubmitted,
        chain,
        chord,
        graph,
        group,
    )
    from runtime.job_records import ACTIVE_STATES, JobRecord, JobRecords, State, now_ms
    from runtime.jobs import REGISTRY, Job, Payload, Retry, Submitted, forget, job
    from runtime.live import KEEPALIVE_S as LIVE_KEEPALIVE_S
    from runtime.live import RecordEvents, follow, record_events
    from runtime.lost_jobs import RECOVERED_KEY, reconcile, reconcile_workflows
    from runtime.middleware.batching import Batch
    from runtime.middleware.heartbeat import gone_workers, live_workers
    from runtime.middleware.recycle import RECYCLE_EXIT_CODE
    from runtime.middleware.result_cache import Cache
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
    from runtime.sealing import Sealed

#: Each public name -> (module, name in that module).
_EXPORTS: dict[str, tuple[str, str]] = {
    "audit_key": ("runtime.audit", "audit_key"),
    "audit_processing": ("runtime.audit", "audit_processing"),
    "Minute": ("runtime.activity", "Minute"),
    "merged_durations": ("runtime.activity", "merged_durations"),
    "forget_minutes": ("runtime.activity", "forget_minutes"),
    "percentile_ms": ("runtime.activity", "percentile_ms"),
    "recent_minutes": ("runtime.activity", "recent_minutes"),
    "AsyncOutbox": ("runtime.async_enqueue", "AsyncOutbox"),
    "async_outbox": ("runtime.async_enqueue", "async_outbox"),
    "BREAKER_PREFIX": ("runtime.breaker", "PREFIX"),
    "CircuitBreaker": ("runtime.breaker", "CircuitBreaker"),
    "rate_limited": ("runtime.breaker", "rate_limited"),
    "NAMESPACE": ("runtime.build", "NAMESPACE"),
    "Runtime": ("runtime.build", "Runtime"),
    "build_broker": ("runtime.build", "build_broker"),
    "current": ("runtime.build", "current"),
    "middleware_of": ("runtime.build", "middleware_of"),
    "on_setup": ("runtime.build", "on_setup"),
    "redis_client": ("runtime.connections", "redis_client"),
    "async_redis_client": ("runtime.connections", "async_redis_client"),
    "describe_redis": ("runtime.connections", "describe_redis"),
    "sentinel_master": ("runtime.connections", "sentinel_master"),
    "check_sentinels": ("runtime.connections", "check_sentinels"),
    "SentinelMisconfigured": ("runtime.connections", "SentinelMisconfigured"),
    "SentinelUnreachable": ("runtime.connections", "SentinelUnreachable"),
    "setup": ("runtime.build", "setup"),
    "act_as": ("runtime.clients", "act_as"),
    "acting_as": ("runtime.clients", "acting_as"),
    "current_client": ("runtime.clients", "current_client"),
    "RobustRedisBroker": ("runtime.consumer", "RobustRedisBroker"),
    "broker": ("runtime.context", "broker"),
    "cancel_workflow": ("runtime.context", "cancel_workflow"),
    "chunked_session": ("runtime.context", "chunked_session"),
    "current_settings": ("runtime.context", "current_settings"),
    "current_task_id": ("runtime.context", "current_task_id"),
    "engine": ("runtime.context", "engine"),
    "flush_journal": ("runtime.context", "flush_journal"),
    "outbox": ("runtime.context", "outbox"),
    "progress": ("runtime.context", "progress"),
    "records": ("runtime.context", "records"),
    "session_scope": ("runtime.context", "session_scope"),
    "soft_limit_reached": ("runtime.context", "soft_limit_reached"),
    "submit_workflow": ("runtime.context", "submit_workflow"),
    "uniqueness": ("runtime.context", "uniqueness"),
    "workflows": ("runtime.context", "workflows"),
    "Control": ("runtime.control", "Control"),
    "DeadLetter": ("runtime.control", "DeadLetter"),
    "QueueStats": ("runtime.control", "QueueStats"),
    "FORWARDED_KEY": ("runtime.deferred", "FORWARDED_KEY"),
    "Forwarded": ("runtime.deferred", "Forwarded"),
    "Outbox": ("runtime.deferred", "Outbox"),
    "deferred_record": ("runtime.deferred", "deferred_record"),
    "forward": ("runtime.deferred", "forward"),
    "scrub_redis": ("runtime.erasure", "scrub_redis"),
    "NotSetUp": ("runtime.errors", "NotSetUp"),
    "ACTIVE_STATES": ("runtime.job_records", "ACTIVE_STATES"),
    "JobRecord": ("runtime.job_records", "JobRecord"),
    "JobRecords": ("runtime.job_records", "JobRecords"),
    "State": ("runtime.job_records", "State"),
    "now_ms": ("runtime.job_records", "now_ms"),
    "Job": ("runtime.jobs", "Job"),
    "Payload": ("runtime.jobs", "Payload"),
    "REGISTRY": ("runtime.jobs", "REGISTRY"),
    "Retry": ("runtime.jobs", "Retry"),
    "Submitted": ("runtime.jobs", "Submitted"),
    "forget": ("runtime.jobs", "forget"),
    "job": ("runtime.jobs", "job"),
    "LIVE_KEEPALIVE_S": ("runtime.live", "KEEPALIVE_S"),
    "RecordEvents": ("runtime.live", "RecordEvents"),
    "follow": ("runtime.live", "follow"),
    "record_events": ("runtime.live", "record_events"),
    "Batch": ("runtime.middleware.batching", "Batch"),
    "Cache": ("runtime.middleware.result_cache", "Cache"),
    "live_workers": ("runtime.middleware.heartbeat", "live_workers"),
    "gone_workers": ("runtime.middleware.heartbeat", "gone_workers"),
    "RECYCLE_EXIT_CODE": ("runtime.middleware.recycle", "RECYCLE_EXIT_CODE"),
    "SCHEDULER_PREFIX": ("runtime.middleware.scheduled_runs", "SCHEDULER_PREFIX"),
    "SKIPS_KEY": ("runtime.middleware.scheduled_runs", "SKIPS_KEY"),
    "entry_key": ("runtime.middleware.scheduled_runs", "entry_key"),
    "mark_skipped": ("runtime.middleware.scheduled_runs", "mark_skipped"),
    "SoftTimeLimitExceeded": ("runtime.middleware.soft_time_limit", "SoftTimeLimitExceeded"),
    "DuplicateJob": ("runtime.middleware.uniqueness", "DuplicateJob"),
    "REDIS_ERRORS": ("runtime.outage", "REDIS_ERRORS"),
    "until_redis_answers": ("runtime.outage", "until_redis_answers"),
    "NO_RETRY": ("runtime.policy", "NO_RETRY"),
    "RetryPolicy": ("runtime.policy", "RetryPolicy"),
    "PriorityClass": ("runtime.priorities", "PriorityClass"),
    "QUEUES": ("runtime.queues", "QUEUES"),
    "Sealed": ("runtime.sealing", "Sealed"),
    "RECOVERED_KEY": ("runtime.lost_jobs", "RECOVERED_KEY"),
    "reconcile": ("runtime.lost_jobs", "reconcile"),
    "reconcile_workflows": ("runtime.lost_jobs", "reconcile_workflows"),
    "FinishedWorkflow": ("runtime.flows", "FinishedWorkflow"),
    "MAX_STEPS": ("runtime.flows", "MAX_STEPS"),
    "Step": ("runtime.flows", "Step"),
    "StepResult": ("runtime.flows", "StepResult"),
    "StepResults": ("runtime.flows", "StepResults"),
    "StepSpec": ("runtime.flows", "StepSpec"),
    "WorkflowSpec": ("runtime.flows", "WorkflowSpec"),
    "WorkflowSubmitted": ("runtime.flows", "WorkflowSubmitted"),
    "Workflows": ("runtime.flows", "Workflows"),
    "chain": ("runtime.flows", "chain"),
    "chord": ("runtime.flows", "chord"),
    "graph": ("runtime.flows", "graph"),
    "group": ("runtime.flows", "group"),
}

__all__ = [
    "ACTIVE_STATES",
    "Minute",
    "merged_durations",
    "forget_minutes",
    "percentile_ms",
    "recent_minutes",
    "AsyncOutbox",
    "BREAKER_PREFIX",
    "Batch",
    "Cache",
    "CircuitBreaker",
    "Control",
    "DeadLetter",
    "DuplicateJob",
    "FORWARDED_KEY",
    "FinishedWorkflow",
    "Forwarded",
    "Job",
    "JobRecord",
    "JobRecords",
    "LIVE_KEEPALIVE_S",
    "MAX_STEPS",
    "NAMESPACE",
    "NO_RETRY",
    "NotSetUp",
    "Outbox",
    "Payload",
    "PriorityClass",
    "QUEUES",
    "Sealed",
    "QueueStats",
    "RECOVERED_KEY",
    "RECYCLE_EXIT_CODE",
    "REDIS_ERRORS",
    "REGISTRY",
    "RecordEvents",
    "Retry",
    "RetryPolicy",
    "RobustRedisBroker",
    "Runtime",
    "SCHEDULER_PREFIX",
    "SKIPS_KEY",
    "SentinelMisconfigured",
    "SentinelUnreachable",
    "SoftTimeLimitExceeded",
    "State",
    "Step",
    "StepResult",
    "StepResults",
    "StepSpec",
    "Submitted",
    "WorkflowSpec",
    "WorkflowSubmitted",
    "Workflows",
    "act_as",
    "acting_as",
    "async_redis_client",
    "audit_key",
    "audit_processing",
    "async_outbox",
    "broker",
    "build_broker",
    "cancel_workflow",
    "chain",
    "check_sentinels",
    "chord",
    "chunked_session",
    "current",
    "current_client",
    "current_settings",
    "current_task_id",
    "deferred_record",
    "describe_redis",
    "engine",
    "entry_key",
    "flush_journal",
    "follow",
    "forget",
    "forward",
    "graph",
    "group",
    "job",
    "live_workers",
    "gone_workers",
    "mark_skipped",
    "middleware_of",
    "now_ms",
    "on_setup",
    "outbox",
    "progress",
    "rate_limited",
    "reconcile",
    "reconcile_workflows",
    "record_events",
    "records",
    "redis_client",
    "scrub_redis",
    "sentinel_master",
    "session_scope",
    "setup",
    "soft_limit_reached",
    "submit_workflow",
    "uniqueness",
    "until_redis_answers",
    "workflows",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
