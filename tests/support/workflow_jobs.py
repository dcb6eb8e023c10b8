"""Jobs the workflow tests chain, group and chord, declared exactly like production jobs.

Each run is counted in Redis under `gaveurs:test:wf:*`, so a test can check from outside the
worker that a step or a callback ran exactly once.
"""

from __future__ import annotations

import time

from pydantic import Field

from actors import setup  # noqa: F401  (Dramatiq's CLI: tests.support.workflow_jobs:setup)
from domain.errors import PermanentError
from runtime import Payload, RetryPolicy, StepResults, broker, job

PREFIX = "gaveurs:test:wf:"


class Number(Payload):
    key: str = Field(min_length=1, max_length=100)
    value: int = 0
    sleep_ms: int = Field(default=0, ge=0, le=60_000)


class Total(Payload):
    key: str = Field(min_length=1, max_length=100)
    results: StepResults = Field(default_factory=list)


def count_run(key: str) -> int:
    return int(broker().client.incr(f"{PREFIX}runs:{key}"))


def runs(key: str) -> int:
    return int(broker().client.get(f"{PREFIX}runs:{key}") or 0)


def make_fail(key: str, *, fail: bool = True) -> None:
    """While set, `number` for this key fails permanently (dead-lettered at once)."""
    if fail:
        broker().client.set(f"{PREFIX}fail:{key}", 1)
    else:
        broker().client.delete(f"{PREFIX}fail:{key}")


@job(queue="default", payload=Number, retry=RetryPolicy(max_retries=0))
def number(payload: Number) -> int:
    """Returns its value after `sleep_ms`; fails while its key is marked failing."""
    count_run(payload.key)
    if payload.sleep_ms:
        time.sleep(payload.sleep_ms / 1000)
    if broker().client.exists(f"{PREFIX}fail:{payload.key}"):
        raise PermanentError(f"step {payload.key} told to fail")
    return payload.value


@job(queue="default", payload=Total, retry=RetryPolicy(max_retries=0))
def total(payload: Total) -> dict[str, object]:
    """Sums its predecessors' results; names those that did not succeed."""
    count_run(payload.key)
    return {
        "sum": sum(r.result for r in payload.results if r.state == "SUCCESS"),
        "count": len(payload.results),
        "failed": sorted(r.step for r in payload.results if r.state != "SUCCESS"),
    }
