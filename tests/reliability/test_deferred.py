"""Store and forward (issue 17, part 1): with Redis down the API keeps accepting jobs into the
database journal, and sends each of them once, in acceptance order, when Redis is back."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import httpx

from ops.local_redis import free_port
from runtime import State
from tests.reliability.stack import SCALE, Report, Stack
from tests.support.polling import wait_for
from tests.support.workers import ROOT


def _post(stack: Stack, name: str, body: dict[str, str | int], **headers: str) -> httpx.Response:
    assert stack.api is not None
    return stack.api.post(f"/api/jobs/{name}", json=body, headers=headers)


def test_jobs_accepted_while_redis_is_down_run_once_in_order_when_it_is_back(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    stack = stack_factory()
    api = stack.start_api()
    run = uuid.uuid4().hex[:6]
    plain = [f"plain-{run}-{i}" for i in range(350 * SCALE)]
    keyed = [f"keyed-{run}-{i}" for i in range(50 * SCALE)]
    unique = [f"unique-{run}-{i}" for i in range(50 * SCALE)]
    # Given Redis down
    stack.redis.kill()
    # When 550 requests of three kinds arrive: plain jobs, jobs with an Idempotency-Key sent
    # twice (a client retrying), unique jobs submitted twice
    accepted: list[str] = []  # task ids in acceptance order
    task_of: dict[str, str] = {}
    latencies_ms: list[float] = []
    statuses: list[int] = []

    def send(name: str, key: str, **headers: str) -> httpx.Response:
        body: dict[str, str | int] = {"key": key} if name != "rel_effect" else {"key": key, "ms": 0}
        started = time.perf_counter()
        response = _post(stack, name, body, **headers)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        statuses.append(response.status_code)
        return response

    for i, key in enumerate(plain):
        answer = send("rel_effect", key).json()
        assert answer["queued"] == "deferred" and answer["status"] == "PENDING", answer
        accepted.append(answer["task_id"])
        task_of[key] = answer["task_id"]
        if i % 7 == 0 and keyed:
            extra = keyed.pop()
            first = send("rel_effect", extra, **{"Idempotency-Key": f"k-{extra}"}).json()
            retry = send("rel_effect", extra, **{"Idempotency-Key": f"k-{extra}"}).json()
            assert retry["task_id"] == first["task_id"] and retry["duplicate"], retry
            accepted.append(first["task_id"])
            task_of[extra] = first["task_id"]
        if i % 7 == 3 and unique:
            extra = unique.pop()
            first = send("rel_unique_effect", extra).json()
            again = send("rel_unique_effect", extra).json()
            assert again["task_id"] == first["task_id"] and again["duplicate"], again
            accepted.append(first["task_id"])
            task_of[extra] = first["task_id"]
    # Then every request was answered 202, and status reads answer from the journal
    assert set(statuses) == {202}, statuses
    status = api.client.get(f"/api/tasks/status/{accepted[0]}")
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "PENDING" and status.json()["queued"] == "deferred"
    # And a reused Idempotency-Key with another payload is refused while deferred
    some_keyed = next(k for k in task_of if k.startswith("keyed"))
    clash = _post(
        stack, "rel_effect", {"key": some_keyed, "ms": 5}, **{"Idempotency-Key": f"k-{some_keyed}"}
    )
    assert clash.status_code == 409, clash.text
    # And reads that need Redis still answer 503
    assert api.client.get("/api/tasks/list/active").status_code == 503

    # When Redis is back (empty: it kept nothing) and one worker thread runs the queue
    stack.redis.start()
    back = time.monotonic()
    stack.start_worker(threads=1)
    keys = list(task_of)
    forwarded_s = stack.wait_effects(keys, timeout=240)
    wait_for(
        lambda: stack.states(accepted) == {State.SUCCESS: len(accepted)},
        timeout=60,
        what="records to reach SUCCESS",
    )
    # Then every job ran exactly once, in acceptance order
    executions = stack.executions()
    assert {k: n for k, n in executions.items() if k in task_of and n != 1} == {}
    key_of = {task_id: key for key, task_id in task_of.items()}
    ran = [key for (key,) in stack._ledger("SELECT key FROM rel_executions ORDER BY rowid")]
    assert [k for k in ran if k in task_of] == [key_of[t] for t in accepted]
    # And a client retrying an Idempotency-Key now gets the same job, which does not run again
    retry = _post(
        stack, "rel_effect", {"key": some_keyed, "ms": 0}, **{"Idempotency-Key": f"k-{some_keyed}"}
    )
    assert retry.status_code == 202 and retry.json()["task_id"] == task_of[some_keyed]
    assert retry.json()["duplicate"] and retry.json()["queued"] == "broker"
    time.sleep(1)
    assert stack.executions()[some_keyed] == 1

    quantiles = statistics.quantiles(latencies_ms, n=100)
    report = stack.report(
        "redis-down-store-and-forward",
        keys,
        accepted=len(statuses),
        enqueued=len(accepted),
        recovery_s=time.monotonic() - back,
        notes={
            "deferred_enqueue_p50_ms": round(statistics.median(latencies_ms), 1),
            "deferred_enqueue_p99_ms": round(quantiles[98], 1),
            "all_done_after_redis_back_s": round(forwarded_s, 1),
        },
    )
    show(report)
    assert report.lost == 0 and report.duplicates == 0


def test_a_clock_forwards_what_a_stopped_web_process_deferred(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    stack = stack_factory()
    stack.start_api()
    run = uuid.uuid4().hex[:6]
    keys = [f"orphan-{run}-{i}" for i in range(20)]
    # Given jobs deferred by a web process that then stops before Redis comes back
    stack.redis.kill()
    tasks = [stack.submit("rel_effect", {"key": key, "ms": 0}) for key in keys]
    assert stack.api is not None
    stack.api.stop()
    stack.api = None
    # When Redis is back and only the clock (and a worker) run
    stack.redis.start()
    stack.start_worker(threads=2)
    log = open(stack.tmp / "clock.log", "ab")  # noqa: SIM115 - closed below
    clock = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.clock", "--poll", "0.5"],
        cwd=ROOT,
        env={**stack.env, "dramatiq_prom_port": str(free_port())},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Then the clock forwards them and each runs once
        recovery = stack.wait_effects(keys, timeout=120)
        wait_for(
            lambda: stack.states(tasks) == {State.SUCCESS: len(tasks)}, timeout=30, what="done"
        )
    finally:
        clock.terminate()
        clock.wait(timeout=20)
        log.close()
    assert "accepted while Redis was down" in (stack.tmp / "clock.log").read_text()
    report = stack.report("redis-down-forwarded-by-clock", keys, recovery_s=recovery)
    show(report)
    evidence = stack.duplicate_evidence(dict(zip(keys, tasks, strict=True)))
    assert report.lost == 0 and report.duplicates == 0, evidence


def test_redis_and_database_both_down_is_a_fast_clean_503(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory()
    # Given an API whose database (PostgreSQL, nothing listening) and Redis are both down
    api = stack.start_api(DATABASE_URL=f"postgresql+psycopg://gaveurs@127.0.0.1:{free_port()}/x")
    stack.redis.kill()
    # When a job is submitted
    started = time.monotonic()
    refused = api.post("/api/jobs/rel_effect", json={"key": "nowhere", "ms": 0})
    elapsed = time.monotonic() - started
    # Then the answer is a 503 that says why, fast, with Retry-After
    assert refused.status_code == 503, refused.text
    detail = refused.json()["detail"]
    assert "Redis" in detail and "database" in detail and refused.headers["Retry-After"]
    assert elapsed < 5.0, elapsed
