"""A worker thread's next job is started in the same round trip as the end of the job before it
(runtime/prestart.py), through a real worker process, with Redis's MONITOR counting the calls."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from runtime import State, records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow

JOBS = 40


class ScriptCalls(threading.Thread):
    """EVALSHA calls seen by Redis's MONITOR, counted by script and by the kinds of record write
    they carry (a batch call names them in its arguments); a call retried after NOSCRIPT once."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client, self.calls, self.batched = client, Counter[str](), Counter[tuple[str, ...]]()
        self.ready, self.done = threading.Event(), threading.Event()
        self.seen: set[str] = set()
        writes = records().writes
        self.names = {
            records()._transition.sha: "transition",
            records()._settle.sha: "settle",
            writes.batch.sha: "batch",
        }

    def run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for seen in monitor.listen():
                if self.done.is_set():
                    return
                words = seen["command"].split()
                if len(words) < 2 or words[0].upper() != "EVALSHA":
                    continue
                name = self.names.get(words[1])
                if name is None:
                    continue
                if seen["command"] in self.seen:
                    continue  # the same call again, after Redis answered NOSCRIPT
                self.seen.add(seen["command"])
                self.calls[name] += 1
                if name == "batch":
                    self.batched[tuple(w for w in words if w in ("settle", "transition"))] += 1


@pytest.fixture()
def calls(clean_redis: redis.Redis) -> Iterator[ScriptCalls]:
    watcher = ScriptCalls(clean_redis)
    watcher.start()
    assert watcher.ready.wait(10)
    yield watcher
    watcher.done.set()
    clean_redis.ping()  # a last command, so the monitor sees the flag and returns
    watcher.join(10)


def test_each_job_is_started_with_the_end_of_the_one_before(
    clean_redis: redis.Redis, calls: ScriptCalls
) -> None:
    # Given 40 jobs waiting before a worker of one thread starts
    ids = [jobs.tick.send(jobs.Tick(key=f"prestart-{i}")).message_id for i in range(JOBS)]
    # When it runs them all
    worker = WorkerProcess(clean_redis, threads=1)
    try:
        wait_for(
            lambda: all(r.state is State.SUCCESS for r in records().get_many(ids)),
            timeout=60,
            what="every job to succeed",
        )
    finally:
        worker.stop()

    # Then each ran once, in its own STARTED -> SUCCESS, one after the other
    assert Counter(clean_redis.lrange(f"{jobs.PREFIX}order", 0, -1)) == {
        f"prestart-{i}".encode(): 1 for i in range(JOBS)
    }
    done = sorted(records().get_many(ids), key=lambda record: record.started_at or 0)
    assert all(record.attempts == 1 for record in done)
    for before, after in zip(done, done[1:], strict=False):
        assert before.started_at <= before.completed_at <= after.started_at
    # And most jobs' STARTED went in the call that ended the job before (one thread: no other
    # writer shares its calls), instead of a call of its own
    lone_starts = calls.calls["transition"]
    together = calls.batched[("settle", "transition")]
    assert together >= JOBS // 2, (calls.calls, calls.batched)
    assert lone_starts + together == JOBS, (calls.calls, calls.batched)
