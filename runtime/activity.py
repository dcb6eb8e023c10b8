"""Jobs per minute by outcome and by queue, and attempt durations, over the last hour or two.

Read from the per-minute counters the transition script keeps at each attempt's end
(lua/history_fn.lua): one small hash per minute, expiring after two hours, so the console's
charts cost Redis a bounded read whatever the traffic, and need no Prometheus. A minute over for
more than FINAL_AFTER_MINUTES no longer changes: the process keeps it, and a poll reads Redis
only for the recent minutes (2 HGETALL instead of 60 once warm).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import redis

from runtime.job_records import KEY_PREFIX, now_ms

MINUTE_MS = 60_000
#: Duration bucket b holds attempts that took about 2^(b/4) ms (lua/history_fn.lua).
BUCKETS_PER_DOUBLING = 4
#: What the counters keep (their hashes expire after two hours).
MAX_MINUTES = 120
#: Minutes this far back are final (a worker's clock a little behind still writes the last one).
FINAL_AFTER_MINUTES = 2
#: Finished minutes read already: (Redis connection pool, prefix, minute number) -> Minute.
_finished: dict[tuple[int, str, int], Minute] = {}


@dataclass(frozen=True)
class Minute:
    """One minute's attempt ends: by outcome, by queue, and durations by bucket (all, and per
    job name)."""

    start_ms: int
    outcomes: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    durations: dict[int, int] = field(default_factory=dict)
    job_durations: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def p95_ms(self) -> float | None:
        return percentile_ms(self.durations, 95)


def bucket_ms(bucket: int) -> float:
    """The middle (geometric) of a duration bucket, in ms."""
    return float(2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING))


def percentile_ms(durations: Mapping[int, int], pct: float) -> float | None:
    """The `pct` percentile of bucketed durations (None without any), within one bucket (19 %)."""
    total = sum(durations.values())
    if not total:
        return None
    rank = total * pct / 100
    seen = 0
    for bucket in sorted(durations):
        seen += durations[bucket]
        if seen >= rank:
            return bucket_ms(bucket)
    return bucket_ms(max(durations))


def merged_durations(minutes: Iterable[Minute], *, job: str | None = None) -> Counter[int]:
    """The minutes' duration buckets together: of every job, or of the job named `job`."""
    merged: Counter[int] = Counter()
    for minute in minutes:
        merged.update(minute.durations if job is None else minute.job_durations.get(job, {}))
    return merged


def _minute(start_ms: int, raw: Mapping[bytes, bytes]) -> Minute:
    outcomes: dict[str, int] = {}
    queues: dict[str, int] = {}
    durations: Counter[int] = Counter()
    jobs: dict[str, dict[int, int]] = {}
    for name, value in raw.items():
        key, count = name.decode(), int(value)
        if key.startswith("queue:"):
            queues[key.removeprefix("queue:")] = count
        elif key.startswith("ms:"):
            job, bucket = key.removeprefix("ms:").rsplit(":", 1)
            jobs.setdefault(job, {})[int(bucket)] = count
            durations[int(bucket)] += count
        else:
            outcomes[key] = count
    return Minute(start_ms, outcomes, queues, dict(durations), jobs)


def recent_minutes(
    client: redis.Redis,
    *,
    minutes: int = 60,
    prefix: str = KEY_PREFIX,
    now: int | None = None,
) -> list[Minute]:
    """The last `minutes` minutes (the current one last), empty minutes included: one pipelined
    round trip of HGETALL for the minutes not known final yet."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be 1-{MAX_MINUTES} (the counters' lifetime), not {minutes}")
    current = (now or now_ms()) // MINUTE_MS
    numbers = range(current - minutes + 1, current + 1)
    pool = id(client.connection_pool)
    missing = [n for n in numbers if (pool, prefix, n) not in _finished]
    pipe = client.pipeline(transaction=False)
    for number in missing:
        pipe.hgetall(f"{prefix}minute:{number}")
    fresh = {
        number: _minute(number * MINUTE_MS, raw)
        for number, raw in zip(missing, pipe.execute(), strict=True)
    }
    for number, minute in fresh.items():
        if number <= current - FINAL_AFTER_MINUTES:
            _finished[(pool, prefix, number)] = minute
    for key in [k for k in list(_finished) if k[2] < current - MAX_MINUTES]:
        _finished.pop(key, None)
    return [fresh[n] if n in fresh else _finished[(pool, prefix, n)] for n in numbers]


def forget_minutes() -> None:
    """Drop the finished minutes this process keeps (a test that rewrites the counters)."""
    _finished.clear()
