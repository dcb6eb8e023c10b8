"""Hands a workflow step its predecessors' outcomes when it runs (runtime/flows.py).

A step declared with `receives="<field>"` carries, in its message options, the task ids of the
steps it depends on; just before it runs, their job records are read (one pipelined round
trip) and put in that payload field as StepResult dicts, which the job's payload model then
validates like any other field. Reading at run time, not at enqueue time, keeps the Lua that
advances a workflow free of result handling, and a re-driven step sees its inputs as they are.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from runtime.job_records import JobRecords
from runtime.middleware.job_records import is_duplicate


class WorkflowInputs(Middleware):
    """Place after JobTracking: a duplicate or cancelled delivery is skipped before this reads."""

    def __init__(self, *, records: JobRecords) -> None:
        self.records = records

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        field = message.options.get("receives")
        if not field or is_duplicate(message):
            return
        inputs: dict[str, str] = message.options.get("inputs") or {}
        found = {r.task_id: r for r in self.records.get_many(inputs.values())}
        outcomes: list[dict[str, Any]] = []
        for step, task_id in inputs.items():
            record = found.get(task_id)
            outcomes.append(
                {
                    "step": step,
                    "task_id": task_id,
                    # An expired record (retention passed before a re-drive) reads as lost.
                    "state": record.state.value if record else "EXPIRED",
                    "result": record.result if record else None,
                    "error": record.error if record else None,
                }
            )
        message.kwargs[field] = outcomes
