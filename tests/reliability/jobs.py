"""Jobs of the fault-injection suite, declared like production jobs (this module also imports
every production actor). Each execution is written to the scenario's SQLite database, not to
Redis, so the count survives the Redis faults the scenarios inject: `rel_executions` gets a row
per execution, `rel_effects` one row per key however often it ran (the idempotent side effect).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from typing import Any

from pydantic import Field

from actors import setup  # noqa: F401  (Dramatiq's CLI: tests.reliability.jobs:setup)
from domain.errors import TransientError
from runtime import Payload, RetryPolicy, job

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rel_executions (key TEXT NOT NULL, pid INTEGER, at REAL)",
    "CREATE TABLE IF NOT EXISTS rel_effects (key TEXT PRIMARY KEY, at REAL)",
)


def _connect() -> sqlite3.Connection:
    url = os.environ["DATABASE_URL"]
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def prepare() -> None:
    with _connect() as connection:
        for statement in SCHEMA:
            connection.execute(statement)


def _executed(key: str) -> int:
    with _connect() as connection:
        connection.execute(
            "INSERT INTO rel_executions VALUES (?, ?, ?)", (key, os.getpid(), time.time())
        )
        return int(
            connection.execute(
                "SELECT count(*) FROM rel_executions WHERE key = ?", (key,)
            ).fetchone()[0]
        )


def _apply_effect(key: str) -> None:
    with _connect() as connection:
        connection.execute("INSERT OR IGNORE INTO rel_effects VALUES (?, ?)", (key, time.time()))


class Effect(Payload):
    key: str = Field(min_length=1, max_length=64)
    ms: int = Field(default=20, ge=0, le=60_000)
    fail_times: int = Field(default=0, ge=0, le=5)


class Keyed(Payload):
    key: str = Field(min_length=1, max_length=64)


@job(
    queue="default",
    payload=Effect,
    retry=RetryPolicy(max_retries=5, min_backoff_ms=500, max_backoff_ms=2_000),
)
def rel_effect(payload: Effect) -> dict[str, Any]:
    """Runs `ms` milliseconds and applies its effect once per key; fails `fail_times` first."""
    return _run_effect(payload)


@job(
    queue="exports",
    payload=Effect,
    retry=RetryPolicy(max_retries=5, min_backoff_ms=500, max_backoff_ms=2_000),
)
def rel_export_effect(payload: Effect) -> dict[str, Any]:
    """`rel_effect` on another queue, for scenarios where workers drain several queues."""
    return _run_effect(payload)


def _run_effect(payload: Effect) -> dict[str, Any]:
    attempt = _executed(payload.key)
    if attempt <= payload.fail_times:
        raise TransientError(f"planned failure {attempt}/{payload.fail_times}")
    time.sleep(payload.ms / 1000)
    _apply_effect(payload.key)
    return {"key": payload.key, "execution": attempt}


@job(
    queue="default",
    payload=Keyed,
    retry=RetryPolicy(max_retries=2, min_backoff_ms=200, max_backoff_ms=1_000),
)
def rel_always_fails(payload: Keyed) -> None:
    """A provider that never comes back."""
    _executed(payload.key)
    raise TransientError("the provider is still down")


@job(queue="default", payload=Keyed)
def rel_kills_its_worker(payload: Keyed) -> None:
    """What an out-of-memory kill looks like from the outside: the process vanishes mid-job."""
    _executed(payload.key)
    os.kill(os.getpid(), signal.SIGKILL)


@job(queue="default", payload=Keyed, unique="{key}")
def rel_unique_effect(payload: Keyed) -> dict[str, Any]:
    """Applies its effect once per key; a second submission while one is active is that one."""
    attempt = _executed(payload.key)
    _apply_effect(payload.key)
    return {"key": payload.key, "execution": attempt}
