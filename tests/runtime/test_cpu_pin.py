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
from runtime.middleware.cpu_pin import cpu_quota, pin_worker, unheld_cpu
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


def test_a_cpu_no_live_pinned_worker_holds_is_taken_else_none(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"{os.getpid()}-0.pin", f"{os.getppid()}-2.pin", f"{dead.pid}-1.pin", "x.pin"):
        (tmp_path / name).touch()
    # CPUs 0 and 2 are held by live workers; the one on CPU 1 has exited (its entry goes)
    assert unheld_cpu({0, 1, 2}, tmp_path) == 1
    assert not (tmp_path / f"{dead.pid}-1.pin").exists()
    assert unheld_cpu({0, 2}, tmp_path) is None


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
@pytest.mark.skipif(not 2 <= len(os.sched_getaffinity(0)) <= 4, reason="needs 2-4 CPUs")
def test_worker_processes_with_several_threads_each_take_a_cpu_of_their_own_while_one_is_free(
    clean_redis: redis.Redis, tmp_path: Path, registry: dict[str, str]
) -> None:
    everywhere = allowed(os.getpid())
    cpus = len(os.sched_getaffinity(0))
    workers = []
    try:
        # Given one worker of two threads per CPU, and one more
        pool = [
            started(clean_redis, tmp_path, f"w{n}", threads=2, env=registry)
            for n in range(cpus + 1)
        ]
        workers += [worker for worker, _ in pool]
        pids = [pid for _, pid in pool]
        # And a worker of one thread, and one with pinning off
        single, single_pid = started(clean_redis, tmp_path, "single", threads=1, env=registry)
        workers.append(single)
        off, off_pid = started(
            clean_redis, tmp_path, "off", threads=2, env={**registry, "WORKER_CPU_PIN": "off"}
        )
        workers.append(off)
        # Then every thread of each of the first workers' processes is on one CPU of its own
        pinned = [allowed(pid) for pid in pids[:cpus]]
        assert all(len(one) == 1 and "," not in next(iter(one)) for one in pinned), pinned
        assert len({next(iter(one)) for one in pinned}) == cpus, pinned
        # listed in the registry, while Dramatiq's own main process stays where it was
        pins = tmp_path / f"gaveurs-cpu-pins-{os.getuid()}"
        entries = [f"{pid}-{next(iter(one))}.pin" for pid, one in zip(pids, pinned, strict=False)]
        assert sorted(p.name for p in pins.glob("*.pin")) == sorted(entries)
        assert allowed(workers[0].process.pid) == everywhere
        # And the one past the CPUs, the one-thread worker and the one with pinning off are left
        # to the scheduler, and say why (a worker process's log reaches the file through
        # Dramatiq's main process, possibly after its heartbeat reached Redis)
        for pid, name in ((pids[-1], f"w{cpus}"), (single_pid, "single"), (off_pid, "off")):
            assert allowed(pid) == everywhere, name
            log = tmp_path / f"{name}.log"
            wait_for(
                lambda log=log: "worker threads not pinned" in log.read_text(),
                timeout=10,
                what=f"{name}'s log saying why it is not pinned",
            )
        # A stopped worker leaves the registry
        workers[0].stop()
        assert not (pins / entries[0]).exists()
    finally:
        for worker in workers:
            worker.stop()
