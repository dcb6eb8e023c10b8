"""Helpers for tests that touch the clocks' shared state in Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def clear_scheduler_state(client: redis.Redis) -> None:
    keys = list(client.scan_iter("gaveurs:scheduler:*", count=1000))
    if keys:
        client.delete(*keys)


def forget_scheduled_jobs(client: redis.Redis) -> None:
    """Scheduled jobs nobody ran: drop their records and uniqueness keys for the next tests."""
    from runtime import broker, records
    from scheduler.state import ScheduleState

    for run in ScheduleState(client).history():
        records().delete(run["task_id"])
    unique = list(client.scan_iter("gaveurs:unique:*", count=1000))
    if unique:
        client.delete(*unique)
    clear_scheduler_state(client)
    broker().flush("default")


def clock_process(
    log: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real `python -m scheduler` process."""
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
