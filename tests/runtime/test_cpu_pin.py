"""A worker process's threads kept on one CPU (runtime/middleware/cpu_pin.py): the rules on their
own, then real worker processes read through /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from runtime import live_workers
from runtime.middleware.cpu_pin import cpu_quota, least_held, pin_worker
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess


def test_a_cgroup_quota_is_read_from_cgroup_v2_or_v1(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(v2) is None
    (v2 / "cpu.max").write_text("50000 100000\n")
    assert cpu_quota(v2) == "50000/100000"
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(v1.parent) is None
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    assert cpu_quota(v1.parent) == "200000/100000"
    assert cpu_quota(tmp_path / "none") is None


def test_the_cpu_held_by_the_fewest_live_pinned_workers_is_taken(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"{os.getpid()}-0.pin", f"{os.getppid()}-0.pin", f"{dead.pid}-1.pin", "x.pin"):
        (tmp_path / name).touch()
    # Two live workers on CPU 0; the one on CPU 1 has exited (its entry goes)
    assert least_held({0, 1, 2}, tmp_path) == 1
    assert not (tmp_path / f"{dead.pid}-1.pin").exists()
    assert least_held({0}, tmp_path) == 0


def test_a_program_that_runs_a_worker_itself_is_never_pinned(tmp_path: Path) -> None:
    before = os.sched_getaffinity(0)
    assert pin_worker(threads=8, mode="auto", registry=tmp_path) is None
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="WORKER_CPU_PIN"):
        pin_worker(threads=8, mode="always", registry=tmp_path)


def allowed(pid: int) -> set[str]:
    """The CPU lists of every thread of `pid` (one entry when they all agree)."""
    found = set()
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found.add(line.split()[1])
    return found


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Workers whose registry of pinned processes is this test's own."""
    yield {"XDG_RUNTIME_DIR": str(tmp_path)}


def started(
    client: redis.Redis, tmp_path: Path, name: str, *, threads: int, env: dict[str, str]
) -> tuple[WorkerProcess, int]:
    """A real worker (`dramatiq ... --processes 1`), and the pid of its worker process."""
    known = {w["pid"] for w in live_workers(client)}
    worker = WorkerProcess(client, log_path=tmp_path / f"{name}.log", threads=threads, env=env)
    pid = wait_for(
        lambda: ({w["pid"] for w in live_workers(client)} - known or {None}).pop(),
        what=f"{name}'s worker process",
    )
    return worker, int(pid)


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to choose from")
def test_worker_processes_with_several_threads_each_take_one_cpu_of_their_own(
    clean_redis: redis.Redis, tmp_path: Path, registry: dict[str, str]
) -> None:
    everywhere = allowed(os.getpid())
    workers = []
    try:
        # Given two workers of four threads, one of one thread, and one with pinning off
        first, first_pid = started(clean_redis, tmp_path, "first", threads=4, env=registry)
        workers.append(first)
        second, second_pid = started(clean_redis, tmp_path, "second", threads=4, env=registry)
        workers.append(second)
        single, single_pid = started(clean_redis, tmp_path, "single", threads=1, env=registry)
        workers.append(single)
        off, off_pid = started(
            clean_redis, tmp_path, "off", threads=4, env={**registry, "WORKER_CPU_PIN": "off"}
        )
        workers.append(off)
        # Then every thread of each several-thread worker process is on one CPU, a different one
        pinned = [allowed(first_pid), allowed(second_pid)]
        assert all(len(cpus) == 1 and "," not in next(iter(cpus)) for cpus in pinned), pinned
        assert pinned[0] != pinned[1], pinned
        # listed in the registry, while Dramatiq's own main process stays where it was
        pins = tmp_path / f"gaveurs-cpu-pins-{os.getuid()}"
        entries = {(first_pid, *pinned[0]), (second_pid, *pinned[1])}
        assert sorted(p.name for p in pins.glob("*.pin")) == sorted(
            f"{pid}-{cpu}.pin" for pid, cpu in entries
        )
        assert allowed(first.process.pid) == everywhere
        # And the one-thread worker and the one with pinning off are left to the scheduler
        assert allowed(single_pid) == everywhere
        assert allowed(off_pid) == everywhere
        for name in ("single", "off"):
            assert "worker threads not pinned" in (tmp_path / f"{name}.log").read_text()
        # A stopped worker leaves the registry
        first.stop()
        assert not (pins / f"{first_pid}-{next(iter(pinned[0]))}.pin").exists()
    finally:
        for worker in workers:
            worker.stop()
