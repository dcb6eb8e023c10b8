"""Record writes of concurrent threads share Redis calls (runtime/batching.py), against the
session's real Redis. `CLIENT PAUSE` holds the first write in Redis, so the writes made
meanwhile queue behind it and go together, deterministically."""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from dramatiq.middleware import raise_thread_exception

from ops.local_redis import RedisServer
from ops.netns import DelayProxy
from runtime import JobRecords, State, records
from runtime.batching import MAX_IN_FLIGHT, OVERLAP_S

PAUSE_MS = 400


def _started(task_id: str, delivery: str, epoch: int = 0) -> tuple[State, int, bool] | None:
    """A worker's STARTED write: (state after it, lost runs, whether it applied)."""
    fields = {"started_at": 1, "worker": "test", "delivery": delivery}
    outcome = records().apply(task_id, State.STARTED, epoch=epoch, fields=fields)
    return (outcome.state, outcome.lost_runs, outcome.applied) if outcome else None


def _pending() -> str:
    task_id = f"batch-{uuid.uuid4().hex}"
    fields = {"task_id": task_id}
    records().transition(task_id, State.PENDING, epoch=0, mode="create", fields=fields)
    return task_id


class Writer(threading.Thread):
    def __init__(self, write: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.write, self.outcome, self.error = write, None, None

    def run(self) -> None:
        try:
            self.outcome = self.write()
        except BaseException as error:
            self.error = error


@pytest.fixture()
def paused(redis_server: RedisServer) -> Iterator[Callable[[], None]]:
    """Pause Redis's writes for PAUSE_MS (the writes made meanwhile wait in Redis). One call in
    flight at a time (a held call would otherwise let the next write lead a second one)."""
    batcher = records().writes
    batcher.max_in_flight = 1
    yield lambda: redis_server.client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
    redis_server.client.execute_command("CLIENT", "UNPAUSE")
    batcher.max_in_flight = MAX_IN_FLIGHT


def _while_one_is_held(pause: Callable[[], None], writes: list[Callable[[], Any]]) -> list[Writer]:
    """The first write is held in Redis; the others are made while it is."""
    pause()
    first = Writer(writes[0])
    first.start()
    time.sleep(0.1)
    rest = [Writer(write) for write in writes[1:]]
    for writer in rest:
        writer.start()
    for writer in (first, *rest):
        writer.join(timeout=10)
        assert not writer.is_alive(), "a writer is stuck"
    return [first, *rest]


def test_writes_made_meanwhile_share_one_call_and_each_gets_its_own_reply(
    paused: Callable[[], None],
) -> None:
    # Given records in different states: waiting, cancelled, already ended, already started
    waiting = [_pending() for _ in range(3)]
    cancelled, ended, started = _pending(), _pending(), _pending()
    records().transition(cancelled, State.REVOKED, epoch=-1)
    records().transition(ended, State.SUCCESS, epoch=0)
    assert _started(started, "first-delivery") == (State.STARTED, 0, True)
    calls, writes = records().writes.calls, records().writes.writes

    # When their STARTED writes are made while one is held in Redis
    deliveries = [os.urandom(4).hex() for _ in range(3)]
    order = [
        lambda: _started(waiting[0], deliveries[0]),
        lambda: _started(waiting[1], deliveries[1]),
        lambda: _started(cancelled, "x"),
        lambda: _started(ended, "y"),
        lambda: _started(started, "first-delivery"),  # a client retry of the same delivery
        lambda: _started(started, "second-delivery"),  # its worker died: a lost run
        lambda: _started(waiting[2], deliveries[2]),
    ]
    writers = _while_one_is_held(paused, order)

    # Then each writer sees what its own write did, as if it had called alone
    assert [w.error for w in writers] == [None] * len(order)
    assert [w.outcome for w in writers] == [
        (State.STARTED, 0, True),
        (State.STARTED, 0, True),
        (State.REVOKED, 0, False),
        (State.SUCCESS, 0, False),
        (State.STARTED, 0, True),
        (State.STARTED, 1, True),
        (State.STARTED, 0, True),
    ]
    for task_id in waiting:
        record = records().get(task_id)
        assert record is not None and record.state == State.STARTED and record.attempts == 1
    # And the six made meanwhile went in one call, after the held one
    assert records().writes.writes - writes == len(order)
    assert records().writes.calls - calls == 2


def test_a_retry_and_a_stale_redelivery_in_one_batch(paused: Callable[[], None]) -> None:
    # Given a job waiting for its first retry (attempt 0 failed, epoch 1)
    retried = _pending()
    assert _started(retried, "attempt-0") == (State.STARTED, 0, True)
    records().transition(retried, State.RETRY, epoch=1)
    other = _pending()
    # When the retry starts while a redelivery of attempt 0 arrives late, in one batch
    writers = _while_one_is_held(
        paused,
        [
            lambda: _started(other, "a"),
            lambda: _started(retried, "attempt-1", epoch=1),
            lambda: _started(retried, "attempt-0-again", epoch=0),
        ],
    )
    # Then the retry starts and the stale delivery is told it is a duplicate
    assert [w.outcome for w in writers] == [
        (State.STARTED, 0, True),
        (State.STARTED, 0, True),
        (State.STARTED, 0, False),
    ]
    record = records().get(retried)
    assert record is not None and record.attempts == 2


def test_a_write_redis_refuses_fails_alone(
    paused: Callable[[], None], redis_server: RedisServer
) -> None:
    # Given a record key that holds a string (a write to it is refused by Redis)
    broken = f"batch-broken-{uuid.uuid4().hex}"
    redis_server.client.set(records().key(broken), "not a hash")
    good = [_pending() for _ in range(3)]
    try:
        # When its write is made in the same batch as good ones
        writers = _while_one_is_held(
            paused,
            [
                lambda: _started(good[0], "a"),
                lambda: _started(good[1], "b"),
                lambda: _started(broken, "c"),
                lambda: _started(good[2], "d"),
            ],
        )
        # Then only its writer gets the error; the others are written
        assert isinstance(writers[2].error, redis.ResponseError)
        for writer in (writers[0], writers[1], writers[3]):
            assert writer.error is None
            assert writer.outcome == (State.STARTED, 0, True)
    finally:
        redis_server.client.delete(records().key(broken))


class Interrupted(BaseException):
    """Stands for a cancel or a time limit raised into a worker thread."""


def test_a_leader_interrupted_mid_call_hands_the_lead_on(paused: Callable[[], None]) -> None:
    # Given a write held in Redis, and writes queued behind it
    tasks = [_pending() for _ in range(3)]
    paused()
    leader = Writer(lambda: _started(tasks[0], "a"))
    leader.start()
    time.sleep(0.1)
    queued = [Writer(lambda t=t: _started(t, "b")) for t in tasks[1:]]
    for writer in queued:
        writer.start()
    time.sleep(0.1)
    # When an exception is raised into the leading thread while it waits for Redis
    assert leader.ident is not None
    raise_thread_exception(leader.ident, Interrupted)
    for writer in (leader, *queued):
        writer.join(timeout=10)
        assert not writer.is_alive(), "a writer is stuck"
    # Then the leader gets its exception, the queued writes still go, and so do later ones
    assert isinstance(leader.error, Interrupted)
    assert [w.outcome for w in queued] == [(State.STARTED, 0, True)] * 2
    later = _pending()
    assert _started(later, "c") == (State.STARTED, 0, True)


def test_far_from_redis_a_second_call_leaves_without_waiting_for_the_first(
    paused: Callable[[], None], redis_server: RedisServer
) -> None:
    # Given records 20 ms from Redis (a delay proxy on loopback), two calls allowed in flight
    with DelayProxy(to=("127.0.0.1", redis_server.port), listen=["127.0.0.1"], rtt_ms=20) as proxy:
        client = redis.Redis(host="127.0.0.1", port=proxy.port)
        far = JobRecords(client, retention_s=3600)
        far.writes.max_in_flight = 2
        tasks = [_pending() for _ in range(5)]
        assert far.apply(tasks.pop(), State.STARTED, epoch=0) is not None  # learns the distance
        calls, writes = far.writes.calls, far.writes.writes
        # When a first write is held in Redis and three more are made one after the other
        # (longer than the fixture's pause: four thread starts on a loaded machine fit in it)
        redis_server.client.execute_command("CLIENT", "PAUSE", 3 * PAUSE_MS, "WRITE")
        writers = [Writer(functools.partial(far.apply, t, State.STARTED, epoch=0)) for t in tasks]
        for writer in writers:
            writer.start()
            time.sleep(0.05)  # each made once the call before it has been out for a while
        for writer in writers:
            writer.join(timeout=10)
            assert not writer.is_alive(), "a writer is stuck"
        client.close()
    # Then the second write led its own call at once, the later ones queued behind the two in
    # flight (never a third at once), and each got its own reply
    assert [w.error for w in writers] == [None] * 4
    assert [(w.outcome.state, w.outcome.applied) for w in writers] == [(State.STARTED, True)] * 4
    assert far.writes.writes - writes == 4
    assert far.writes.peak_in_flight == 2 and far.writes.floor_s >= 0.02
    # (the two queued go together, or each with one of the two calls that return together)
    assert far.writes.calls - calls in (3, 4)


def test_near_redis_calls_are_not_taken_for_distance() -> None:
    # Given the test's Redis on loopback: its calls take well under OVERLAP_S
    batcher = records().writes
    _pending()
    # Then a call held there (a busy machine, a pause) is not taken for distance: no overlap
    assert batcher.floor_s < OVERLAP_S


def test_far_from_redis_concurrent_writes_each_apply_once_without_error(
    redis_server: RedisServer,
) -> None:
    # Given job records reached through 20 ms of round trip (ops/netns.py's delay proxy, here on
    # loopback), and jobs waiting to start
    with DelayProxy(to=("127.0.0.1", redis_server.port), listen=["127.0.0.1"], rtt_ms=20) as proxy:
        client = redis.Redis(host="127.0.0.1", port=proxy.port)
        far = JobRecords(client, retention_s=3600)
        tasks = [[_pending() for _ in range(6)] for _ in range(8)]

        # When 8 threads start their jobs at once, each one job after the other
        def start_all(mine: list[str]) -> list[tuple[State, int, bool] | None]:
            found = []
            for task_id in mine:
                outcome = far.apply(task_id, State.STARTED, epoch=0, fields={"delivery": "x"})
                found.append(
                    (outcome.state, outcome.lost_runs, outcome.applied) if outcome else None
                )
            return found

        writers = [Writer(functools.partial(start_all, mine)) for mine in tasks]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=30)
            assert not writer.is_alive(), "a writer is stuck"
        client.close()

    # Then every write applied once and each thread got its own replies, through calls that
    # overlapped (no write waited for every call before it)
    assert [w.error for w in writers] == [None] * 8
    assert all(w.outcome == [(State.STARTED, 0, True)] * 6 for w in writers)
    for task_id in (t for mine in tasks for t in mine):
        record = records().get(task_id)
        assert record is not None and record.attempts == 1
    assert 1 < far.writes.peak_in_flight <= MAX_IN_FLIGHT
    assert far.writes.writes == 48 and far.writes.calls < 48
