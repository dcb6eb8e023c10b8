"""What a running job (and an entry point) reads from the runtime `setup` built: the settings it
was given, the broker, the database, the job records, and the current job's own helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.platform.db import session_factory
from domain.platform.settings import Settings
from runtime.build import current, middleware_of
from runtime.connections import redis_client
from runtime.consumer import RobustRedisBroker
from runtime.deferred import Outbox, outbox_of
from runtime.flows import Node, Policy, Workflows, WorkflowSpec, WorkflowSubmitted, graph
from runtime.job_records import JobRecords
from runtime.middleware.journal import Journal
from runtime.middleware.soft_time_limit import SoftTimeLimit
from runtime.middleware.uniqueness import Uniqueness

_workflows: dict[int, Workflows] = {}


def current_settings() -> Settings:
    """The settings passed to `runtime.setup` in this process."""
    return current().settings


def broker() -> RobustRedisBroker:
    return current().broker


def engine() -> Engine:
    return current().engine


def records() -> JobRecords:
    return current().records


def outbox() -> Outbox:
    """This process's enqueue path with store and forward (Redis, or the journal while away)."""
    now = current()
    return outbox_of(now.broker, now.records, now.engine, max_jobs=now.settings.deferred_max_jobs)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with session_factory(engine())() as session, session.begin():
        yield session


@contextmanager
def chunked_session() -> Iterator[Session]:
    """A session for work that commits in chunks itself (purges); rolled back on error."""
    with session_factory(engine())() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def current_task_id() -> str | None:
    message: dramatiq.Message[Any] | None = CurrentMessage.get_current_message()
    return message.message_id if message else None


def progress(pct: float, note: str = "") -> None:
    """Report progress (0-100) of the running job; a no-op outside a worker."""
    task_id = current_task_id()
    if task_id is not None:
        records().progress(task_id, max(0, min(100, int(pct))), note[:200])


def soft_limit_reached() -> bool:
    """True once the running job passed its soft time limit: stop and return the best so far."""
    soft = middleware_of(broker(), SoftTimeLimit)
    assert isinstance(soft, SoftTimeLimit)
    return soft.reached()


def flush_journal() -> bool:
    """Write the journal entries this process still buffers; False when the journal is off."""
    writer = middleware_of(broker(), Journal)
    assert isinstance(writer, Journal)
    return writer.enabled and writer.flush()


def uniqueness() -> Uniqueness:
    found = middleware_of(broker(), Uniqueness)
    assert isinstance(found, Uniqueness)
    return found


def workflows() -> Workflows:
    """The workflow store of the runtime `setup` built."""
    built = current()
    found = _workflows.get(id(built))
    if found is None:
        # Submitting a 10,000-step graph is one script call of a few MB that runs for about a
        # second on a busy Redis: its own client waits longer than the socket timeout does.
        patient = built.settings.model_copy(
            update={"redis_socket_timeout_s": max(built.settings.redis_socket_timeout_s, 60)}
        )
        found = _workflows[id(built)] = Workflows(
            redis_client(patient),
            records=built.records,
            namespace=built.broker.namespace,
            max_message_bytes=built.broker.max_message_bytes,
            journal=built.engine if built.settings.journal_enabled else None,
        )
    return found


def submit_workflow(
    flow: Node | WorkflowSpec,
    *,
    name: str = "workflow",
    policy: Policy = "fail_fast",
    workflow_id: str | None = None,
) -> WorkflowSubmitted:
    """Validate and start a workflow (a canvas, or a graph of steps as the API takes it).
    With a `workflow_id` already used, the existing workflow is returned, not started again."""
    spec = flow if isinstance(flow, WorkflowSpec) else graph(flow, name=name, policy=policy)
    return workflows().submit(spec, workflow_id=workflow_id)


def cancel_workflow(workflow_id: str) -> dict[str, Any]:
    """Stop a workflow and cancel its steps still queued or running (Conflict if finished)."""
    from domain.errors import Conflict
    from runtime.control import Control

    before, task_ids = workflows().cancel(workflow_id)
    control = Control(broker(), records())
    cancelled = []
    for task_id in task_ids:
        try:
            control.cancel(task_id)
            cancelled.append(task_id)
        except Conflict:
            pass  # it finished meanwhile
    return {"workflow_id": workflow_id, "previous_state": before, "cancelled": cancelled}
