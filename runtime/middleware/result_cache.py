"""The result cache: a job declared `cache="lot-pdf-{lot_id}-{report_type}"` with a
`cache_version` (a function of the payload giving the version of the data the job reads) is
answered from its last finished run while that data has not changed.

`Job.submit` computes the version, then looks up the entry under the payload's key: one that
names the same version and a job whose record says SUCCESS answers the request (`cached`). Else
the job is enqueued with its key and version in its options, and this middleware writes the
entry when the job succeeds. The version is computed before the job reads the data, so a
change meanwhile makes the entry stale rather than a stale result current. A new version (new
gavage or SQAL data for the lot) is a miss: the data change invalidates exactly its entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from domain.platform.settings import Settings
from runtime.job_records import JobRecord, JobRecords, State

KEY_PREFIX = "gaveurs:cache:"
P = TypeVar("P")


@dataclass(frozen=True)
class Cache(Generic[P]):
    """A job's result cache: `key`, a template over the payload's fields, and `version`, the
    version of the data the job reads for that payload (called when a request is submitted: a
    new version is a miss). `ttl_ms` (or a function of the settings giving it): how long an
    entry may answer."""

    key: str
    version: Callable[[P], str]
    ttl_ms: int | Callable[[Settings], int] = 86_400_000


def key_of(job_name: str, cache_key: str) -> str:
    return f"{KEY_PREFIX}{job_name}:{cache_key}"


@dataclass(frozen=True)
class CacheHit:
    """A finished run that answers a request: its record (task id, result)."""

    record: JobRecord


def lookup(client: redis.Redis, records: JobRecords, key: str, version: str) -> CacheHit | None:
    """The finished run stored under `key` for this `version`, if its record still says so."""
    raw = client.get(key)
    if raw is None:
        return None
    entry = json.loads(raw)
    if entry.get("version") != version:
        return None
    record = records.get(entry["task_id"])
    if record is None or record.state is not State.SUCCESS:
        return None
    return CacheHit(record)


class ResultCache(Middleware):
    """Stores a cacheable job's successful run under its key and data version."""

    def __init__(self, *, client: redis.Redis) -> None:
        self.client = client

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        options = message.options
        if exception is not None or "cache_key" not in options:
            return
        entry = {"task_id": message.message_id, "version": options["cache_version"]}
        self.client.set(
            key_of(message.actor_name, options["cache_key"]),
            json.dumps(entry),
            px=options["cache_ttl"],
        )
