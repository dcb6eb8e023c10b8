"""A worker with a wrong clock, and 200 clients flooding the enqueue API."""

from __future__ import annotations

import asyncio
import glob
import ssl
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable

import httpx

from runtime import State
from scheduler.state import ScheduleState
from tests.reliability.stack import SCALE, Report, Stack
from tests.support.api import AUTH
from tests.support.polling import wait_for
from tests.support.scheduler import clock_process


def test_a_worker_clock_60_s_ahead_still_runs_scheduled_jobs_and_the_skew_is_exported(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    libraries = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    assert libraries, "libfaketime is missing: `make test` installs Debian's faketime package"
    stack = stack_factory()
    stack.start_api()
    # Given the only `default` worker on a machine whose clock runs 60 s ahead (libfaketime)
    faked = stack.start_worker(threads=2, LD_PRELOAD=libraries[0], FAKETIME="+60s")
    # Then the exporter publishes the skew, for the GaveursClockSkew alert. (Scraped while the
    # worker's first beat is fresh: libfaketime also moves the monotonic clock, and a timed
    # wait, the one between beats among them, then lasts 60 s longer than asked.)
    text = stack.scrape_exporter()
    skew = float(
        next(
            line for line in text.splitlines() if line.startswith("gaveurs_clock_skew_seconds")
        ).split()[-1]
    )
    # And when a real clock sends broker maintenance (late after 50 s) every virtual minute
    clock = clock_process(
        stack.tmp / "clock.log",
        *("--start", "2026-01-05T05:10:00", "--speed", "10", "--poll", "0.5"),
        env=stack.env,
    )
    state = ScheduleState(stack.redis.client)
    try:
        wait_for(
            lambda: len(state.history()) >= 3, timeout=90, interval=0.5, what="three ticks sent"
        )
    finally:
        clock.terminate()
        clock.wait(timeout=20)
    sent = [run["task_id"] for run in state.history() if run["entry"] == "broker-maintenance"]
    # Then they run (measured on Redis's clock, none is taken for 60 s late) and none is skipped
    wait_for(
        lambda: stack.states(sent)[State.SUCCESS] == len(sent),
        timeout=60,
        what=f"{len(sent)} scheduled runs to succeed",
    )
    assert state.skips() == {}
    # (Its graceful stop waits on faked timed waits, 60 s longer each: the test is over.)
    faked.kill()
    report = stack.report("worker-clock-60s-ahead", [], notes={"runs": len(sent), "skew_s": skew})
    show(report)
    assert 55 < skew < 65


CLIENT_TIMEOUT_S = 60.0


async def _flood(url: str, *, clients: int, per_client: int) -> list[tuple[int, float, str]]:
    """`clients` concurrent clients, each on its own connection (its own httpx client, as 200
    separate programs would be), sending `per_client` enqueues back to back. (One shared httpx
    pool of 200 connections costs ~8 ms of this process's CPU a request: the clients, not the API,
    then set the pace, and a connection idle past uvicorn's 5 s keep-alive while its client waits
    for the loop can be closed by the server as the client writes on it.)"""
    run = uuid.uuid4().hex[:6]
    tls = ssl.create_default_context()  # unused over http://; httpx would build one a client

    async def client(c: int) -> list[tuple[int, float, str]]:
        answers = []
        async with httpx.AsyncClient(
            base_url=url, headers=AUTH, timeout=CLIENT_TIMEOUT_S, verify=tls
        ) as http:
            for i in range(per_client):
                key = f"flood-{run}-{c}-{i}"
                started = time.perf_counter()
                response = await http.post("/api/jobs/rel_effect", json={"key": key, "ms": 0})
                elapsed = time.perf_counter() - started
                answers.append((response.status_code, elapsed, key))
        return answers

    results = await asyncio.gather(*(client(c) for c in range(clients)))
    return [answer for batch in results for answer in batch]


def test_two_hundred_clients_flooding_enqueue_get_202_or_429_and_every_accepted_job_runs(
    stack_factory: Callable[..., Stack], show: Callable[[Report], None]
) -> None:
    # Given the API limited to 50 writes per second (below what it takes), and two workers
    stack = stack_factory()
    api = stack.start_api(ENQUEUE_RATE_PER_S="50")
    stack.start_worker(threads=8)
    stack.start_worker(threads=8)
    # When 200 clients send 5 enqueues each, as fast as they can
    answers = asyncio.run(_flood(api.url, clients=200, per_client=5 * SCALE))
    codes = Counter(code for code, _, _ in answers)
    latencies = sorted(elapsed for _, elapsed, _ in answers)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    accepted = [key for code, _, key in answers if code == 202]
    # Then every answer is 202 or 429 (never 5xx), p99 stays bounded, and every accepted job runs
    stack.wait_effects(accepted, timeout=120)
    report = stack.report(
        "flood-200-clients",
        accepted,
        notes={
            "requests": len(answers),
            "429": codes[429],
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
        },
    )
    show(report)
    assert set(codes) <= {202, 429} and codes[202] > 0 and codes[429] > 0, codes
    assert report.lost == 0 and report.duplicates == 0
    # Bounded: every request answered well within the clients' timeout, none left hanging. (The
    # latency itself is a benchmark figure, ops/bench/api.py, not a test assertion.)
    assert len(answers) == 200 * 5 * SCALE and p99 < CLIENT_TIMEOUT_S / 2
