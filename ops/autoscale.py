"""The autoscaling signal: how many worker processes each queue needs, for KEDA or a PaaS
autoscaler (`gaveurs_queue_desired_workers`, published by the exporter).

Work waiting (ready + in flight) times the measured duration of a job of that queue is the work
to do; a worker process does `threads` jobs at a time; the recommendation is the number of
processes that would clear it within `target_drain_s`. When the oldest message is already older
than that target, the current workers are not keeping up whatever the estimate says, so it asks
for at least one more than are alive. It is clamped to [min, max], and is 0 with nothing to do
(scale to zero) unless `min_workers` says otherwise.

Durations are measured from job records: at each scrape the sampler reads the records that
succeeded since its last look (at most SAMPLE per scrape: a bounded cost) and keeps a moving
average per queue; a queue nothing has been measured for counts `default_job_ms`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis

from runtime import JobRecords

#: Records read per scrape, at most.
SAMPLE = 200
#: Weight of a new duration in the moving average.
SMOOTHING = 0.2


@dataclass(frozen=True)
class Policy:
    target_drain_s: float
    min_workers: int
    max_workers: int
    default_job_ms: float


def desired_workers(
    *,
    ready: int,
    in_flight: int,
    oldest_age_s: float,
    job_ms: float,
    threads: int,
    alive: int,
    policy: Policy,
) -> int:
    """Worker processes this queue needs (see the module's docstring)."""
    waiting = ready + in_flight
    if waiting == 0:
        return policy.min_workers
    work_s = waiting * job_ms / 1000
    wanted = math.ceil(work_s / (max(1, threads) * policy.target_drain_s))
    if ready and oldest_age_s > policy.target_drain_s:
        wanted = max(wanted, alive + 1)
    return max(policy.min_workers, min(policy.max_workers, max(1, wanted)))


class DurationSampler:
    """A moving average of job durations per queue, from the SUCCESS records it has not read."""

    def __init__(self, client: redis.Redis, records: JobRecords) -> None:
        self.client = client
        self.records = records
        self.mean_ms: dict[str, float] = {}
        self._seen_until = 0.0

    def update(self) -> dict[str, float]:
        index = f"{self.records.prefix}state:SUCCESS"
        rows = self.client.zrevrangebyscore(
            index, "+inf", f"({self._seen_until}", start=0, num=SAMPLE, withscores=True
        )
        if not rows:
            return self.mean_ms
        self._seen_until = max(score for _, score in rows)
        pipe = self.client.pipeline(transaction=False)
        for task_id, _ in rows:
            pipe.hmget(self.records.key(task_id.decode()), "queue", "started_at", "completed_at")
        for queue, started, completed in pipe.execute():
            if not (queue and started and completed):
                continue  # expired meanwhile, or never started (a skipped job)
            duration = max(0.0, float(completed) - float(started))
            name = queue.decode()
            previous = self.mean_ms.get(name)
            self.mean_ms[name] = (
                duration if previous is None else previous + SMOOTHING * (duration - previous)
            )
        return self.mean_ms
