"""The workflow benchmark's jobs (ops/bench/workflows.py): a counted no-op step and callbacks,
through the full middleware stack, like ops/bench/jobs.py."""

from __future__ import annotations

from pydantic import Field

from actors import setup  # noqa: F401  (Dramatiq's CLI: ops.bench.workflow_jobs:setup)
from ops.bench import counters
from runtime import Payload, StepResults, broker, job

CALLBACKS = counters.CALLBACKS


class Step(Payload):
    n: int = 0


class Callback(Payload):
    results: StepResults = Field(default_factory=list)


@job(queue="default", payload=Step)
def wf_step(payload: Step) -> int:
    counters.complete(broker().client)
    return payload.n


@job(queue="default", payload=Callback)
def wf_callback(payload: Callback) -> dict[str, int]:
    """Sums what it received (nothing for Dramatiq's group callback, which passes no results)."""
    broker().client.incr(CALLBACKS)
    return {"count": len(payload.results), "sum": sum(int(r.result) for r in payload.results)}
