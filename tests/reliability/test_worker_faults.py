"""Faults of worker processes and of the jobs themselves, with real workers on a private stack."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from runtime import State
from tests.reliability.stack import SCALE, Report, Stack
from tests.support.polling import wait_for


def test_sigkill_mid_job_several_times(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given two workers busy with n jobs
    stack = stack_factory()
    stack.start_api()
    victim, _survivor = stack.start_worker(threads=4), stack.start_worker(threads=4)
    n, kills, threads = 300 * SCALE, 3, 4
    with stack.maintenance(every_s=2):
        tasks = stack.submit_effects(n, ms=150)
        # When one of them is SIGKILLed mid-job three times (restarted each time, as a PaaS does)
        for round_ in range(1, kills + 1):
            wait_for(
                lambda r=round_: len(stack.effects()) >= n * r // (kills + 1),
                timeout=120,
                interval=0.1,
                what="progress before the kill",
            )
            victim.kill()
            killed_at = time.monotonic()
            victim = stack.start_worker(threads=threads)
        # Then every job completes: in-flight and prefetched messages come back
        stack.wait_effects(list(tasks), timeout=180)
        recovery = time.monotonic() - killed_at
    report = stack.report("sigkill-mid-job", list(tasks), recovery_s=recovery)
    show(report)
    assert report.lost == 0 and report.unique_completions == n
    # Only jobs running at a kill can run twice (at least once delivery); their effect is once.
    assert report.duplicates <= kills * threads
    assert report.dead_lettered == 0
    assert recovery < 120


def test_sigterm_under_load_returns_prefetched_messages_at_once(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given two workers with a backlog, and no broker maintenance at all
    stack = stack_factory()
    stack.start_api()
    leaving, _staying = stack.start_worker(threads=4), stack.start_worker(threads=4)
    n = 200 * SCALE
    tasks = stack.submit_effects(n, ms=200)
    wait_for(lambda: len(stack.effects()) >= n // 5, timeout=60, what="some progress")
    # When one worker gets SIGTERM (a deploy): in-flight jobs finish within the shutdown timeout
    started = time.monotonic()
    leaving.terminate()
    shutdown_s = time.monotonic() - started
    # Then its prefetched messages are back at once (no maintenance runs to rescue them)
    recovery = stack.wait_effects(list(tasks), timeout=120)
    report = stack.report(
        "sigterm-under-load", list(tasks), recovery_s=recovery, notes={"shutdown_s": shutdown_s}
    )
    show(report)
    assert report.lost == 0 and report.duplicates == 0 and report.stuck_in_acks == 0
    assert shutdown_s < 5 + 5  # the 5 s shutdown timeout, plus process start-up and exit


def test_an_actor_that_always_raises_is_retried_then_dead_lettered(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory()
    api = stack.start_api()
    stack.start_worker(threads=2)
    key = uuid.uuid4().hex[:8]
    task_id = stack.submit("rel_always_fails", {"key": key})
    record = wait_for(
        lambda: (r := stack.record(task_id)) and r.state == State.FAILURE and r,
        timeout=60,
        what="dead letter",
    )
    assert record.attempts == 3 and stack.executions()[key] == 3  # max_retries=2
    assert record.failure_reason == "retries exhausted after 2 retries"
    letters = api.client.get("/api/queues/default/dead-letters").json()["dead_letters"]
    assert [d["reason"] for d in letters if d["task_id"] == task_id] == [record.failure_reason]
    assert "the provider is still down" in str(letters)


def test_an_actor_that_kills_its_own_process_is_dead_lettered_after_n_deliveries(
    stack_factory: Callable[..., Stack],
) -> None:
    # Given a job that kills whatever worker runs it (an out-of-memory kill, from outside)
    stack = stack_factory()
    stack.start_api()
    worker = stack.start_worker(threads=1)
    key = uuid.uuid4().hex[:8]
    with stack.maintenance(every_s=1):
        task_id = stack.submit("rel_kills_its_worker", {"key": key})
        # When the platform restarts the dead worker each time (Procfile semantics)
        deadline = time.monotonic() + 120
        while (record := stack.record(task_id)) is None or record.state != State.FAILURE:
            assert time.monotonic() < deadline, "never dead-lettered"
            if not worker.alive:
                worker = stack.start_worker(threads=1)
            time.sleep(0.2)
    # Then it ran MAX_WORKER_DEATHS (3) times and the fourth delivery dead-lettered it
    assert stack.executions()[key] == 3
    assert record.lost_runs == 3 and record.error and record.error["type"] == "WorkerDeaths"
    assert "died 3 times" in (record.failure_reason or "")
    assert stack.dead_letters() == 1


def _push_raw(stack: Stack, redis_id: str, body: bytes, *, head: bool = True) -> None:
    client = stack.redis.client
    client.hset("dramatiq:default.msgs", redis_id, body)
    (client.lpush if head else client.rpush)("dramatiq:default", redis_id)


def test_malformed_message_is_dead_lettered_and_its_batch_still_runs(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given good jobs queued, and a malformed body pushed straight to the head of the queue
    stack = stack_factory()
    api = stack.start_api()
    tasks = stack.submit_effects(20, ms=10)
    _push_raw(stack, "not-json-1", b'{"queue_name": "default", "actor_name": ')
    # When a worker fetches them in one batch (prefetch 8)
    stack.start_worker(threads=4)
    # Then the good ones all run and the malformed one is a dead letter with its reason
    stack.wait_effects(list(tasks), timeout=60)
    wait_for(lambda: stack.record("not-json-1"), timeout=30, what="the rejection record")
    record = stack.record("not-json-1")
    assert record.state == State.FAILURE and record.error["type"] == "MalformedMessage"
    letters = api.client.get("/api/queues/default/dead-letters").json()["dead_letters"]
    assert [d["reason"] for d in letters if d["task_id"] == "not-json-1"][0].startswith(
        "undecodable message body"
    )
    report = stack.report("malformed-json", list(tasks))
    show(report)
    assert report.lost == 0 and report.dead_lettered == 1 and report.stuck_in_acks == 0


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _worker_pids(root: int) -> list[int]:
    """The dramatiq main process and its worker children."""
    children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    return [root, *(int(pid) for pid in children)]


def test_ten_megabyte_payloads_are_refused_and_worker_memory_stays_flat(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    stack = stack_factory()
    api = stack.start_api()
    big = {"key": "x" * 64, "ms": 0, "padding": "y" * 10_000_000}
    # At the API: 413 before the body is read
    response = api.post("/api/jobs/rel_effect", json=big)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    # Pushed straight into Redis: dead-lettered by the fetch script, never shipped to a worker
    worker = stack.start_worker(threads=2)
    warm = stack.submit_effects(10, ms=0, prefix="warm")
    stack.wait_effects(list(warm), timeout=60)
    pids = _worker_pids(worker.process.pid)
    before = sum(_rss_kb(pid) for pid in pids)
    for i in range(3):
        body = (
            '{"queue_name":"default","actor_name":"rel_effect","args":[],"kwargs":{"key":"big",'
            f'"pad":"{"z" * 10_000_000}"}},"options":{{}},"message_id":"big-{i}",'
            '"message_timestamp":1}'
        )
        _push_raw(stack, f"big-{i}", body.encode(), head=False)
    tasks = stack.submit_effects(20, ms=0, prefix="after")
    stack.wait_effects(list(tasks), timeout=60)
    wait_for(lambda: stack.dead_letters() == 3, timeout=30, what="three dead letters")
    after = sum(_rss_kb(pid) for pid in pids)
    record = stack.record("big-0")
    assert record.state == State.FAILURE and record.error["type"] == "MessageTooLarge"
    report = stack.report(
        "10mb-payload", list(tasks), notes={"worker_rss_growth_kb": after - before}
    )
    show(report)
    assert report.lost == 0 and after - before < 20_000  # three 10 MB bodies never arrived
