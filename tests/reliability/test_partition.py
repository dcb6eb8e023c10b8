"""A worker host cut off from Redis mid-job (a network partition, not a crash): its jobs come
back within our bound, and when the link returns nothing has run twice in effect.

The host is a network namespace (ops/netns.py) reaching Redis through its veth pair and a delay
proxy without delay; the partition is its link taken down. Root only.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable

import pytest

from ops import netns
from runtime import State
from tests.reliability.stack import Report, Stack
from tests.support.polling import wait_for

pytestmark = [
    pytest.mark.skipif(netns.reason() is not None, reason=f"worker hosts: {netns.reason()}"),
    # 25 s: `make soak` runs it at scale with the rest of the fault suite, `make test` leaves it
    # out for its 20-minute budget, as it does the other network-namespace test.
    pytest.mark.soak,
]

HEARTBEAT_TIMEOUT_S = 5.0  # the stack's WORKER_HEARTBEAT_TIMEOUT_MS
MAINTENANCE_EVERY_S = 2.0
#: A loaded 2-core machine: process scheduling and polling on top of the two figures above.
SLACK_S = 15.0
#: Long enough that the remote host is mid-job when its link goes down.
JOB_MS = 6000


def _pids_on(host: netns.Host) -> set[int]:
    listed = subprocess.run(["ip", "netns", "pids", host.name], capture_output=True, text=True)
    return {int(pid) for pid in listed.stdout.split()}


def test_partitioned_worker_host_has_its_jobs_recovered_and_nothing_runs_twice_in_effect(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    with netns.hosts(1) as (host,):
        stack = stack_factory()
        to_redis = ("127.0.0.1", stack.redis.port)
        with netns.DelayProxy(to=to_redis, listen=[host.gateway], rtt_ms=0) as proxy:
            # Given a worker on its own host holding every job (2 running, 2 prefetched), and a
            # worker here, kept from fetching meanwhile (SIGSTOP)
            stack.start_api()
            remote = stack.start_worker(
                threads=2,
                prefix=tuple(host.run),
                REDIS_URL=f"redis://{host.gateway}:{proxy.port}/0",
            )
            remote_pids = _pids_on(host)
            survivor = stack.start_worker(threads=4)
            os.killpg(survivor.process.pid, signal.SIGSTOP)
            try:
                tasks = stack.submit_effects(4, ms=JOB_MS, prefix="partition")
                wait_for(
                    lambda: (
                        sum(stack.executions().values()) >= 2
                        and stack.redis.client.llen("dramatiq:default") == 0
                    ),
                    timeout=60,
                    what="the remote host running two jobs and holding the rest",
                )
            finally:
                os.killpg(survivor.process.pid, signal.SIGCONT)
            try:
                with stack.maintenance(every_s=MAINTENANCE_EVERY_S):
                    # When its link goes down mid-job
                    host.partition()
                    cut_at = time.monotonic()

                    # Then each of its jobs is started again here, within the heartbeat timeout
                    # plus a maintenance period
                    def recovered() -> bool:
                        with sqlite3.connect(stack.db_path, timeout=30) as ledger:
                            ran = ledger.execute("SELECT key, pid FROM rel_executions")
                            here = {key for key, pid in ran if pid not in remote_pids}
                        return set(tasks) <= here

                    wait_for(recovered, timeout=120, interval=0.2, what="jobs started here")
                    recovery_s = time.monotonic() - cut_at
                    stack.wait_effects(list(tasks), timeout=60)

                    # And when the link comes back, the cut-off worker settles what it held
                    # without undoing anything: every job SUCCESS, each effect once, no ack left
                    host.heal()
                    wait_for(
                        lambda: (
                            stack.stuck_in_acks() == 0
                            and stack.states(list(tasks.values())) == {State.SUCCESS: len(tasks)}
                        ),
                        timeout=90,
                        interval=0.5,
                        what="every job SUCCESS and no message left in an ack set",
                    )
                    assert remote.alive, "the cut-off worker died instead of reconnecting"
            finally:
                host.heal()
                for worker in stack.workers:
                    worker.stop()
            report = stack.report(
                "partitioned-worker-host",
                list(tasks),
                recovery_s=recovery_s,
                expected_executions=dict.fromkeys(tasks, 2),
            )
    show(report)
    assert report.lost == 0 and report.unique_completions == len(tasks)
    # At least once: each job ran here and, at most once more, on the cut-off host.
    assert report.duplicates == 0 and report.executions <= 2 * len(tasks)
    assert report.dead_lettered == 0 and report.stuck_in_acks == 0
    assert recovery_s < HEARTBEAT_TIMEOUT_S + MAINTENANCE_EVERY_S + SLACK_S
