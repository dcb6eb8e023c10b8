"""Consumers wait for messages instead of polling for them.

- An idle consumer (its queue empty) sleeps before fetching again: Dramatiq's backoff, 2.5-5 ms,
  twice as long after each empty fetch, up to the worker timeout (1 s). A job sent to an idle
  worker waited for its next poll. Here the enqueue script also pushes a token on the queue's
  wake list (lua/enqueue.lua, trimmed to one token), and an idle consumer waits on that list
  with a blocking pop for at most the same backoff: it fetches as soon as a message is sent,
  and still at least as often as before (broker heartbeats, maintenance and delayed messages
  keep their pace). A stale token (pushed while every consumer was busy) costs one empty fetch.
- A delayed message moved to its queue (by the worker's delay-queue consumer thread) wakes the
  queue only after its delay-queue copy is acked: woken by the move itself, a consumer could run
  the job while the copy still counted in the queue's size (Dramatiq's own join test saw it).
- A consumer whose prefetch is full waits for one of its messages to be settled instead
  (`Slots`): settling a message that brings it down to half its prefetch wakes it at once, so a
  worker thread that frees up is not left idle for the rest of a backoff.
"""

from __future__ import annotations

import threading

import redis

#: Kept under the client's socket timeout: a blocking pop must never look like a stalled Redis.
SOCKET_TIMEOUT_SHARE = 0.5


def wake_key(namespace: str, queue: str) -> str:
    """The list an enqueue on `queue` pushes a token on (the delay queue `x.DQ` has its own)."""
    return f"{namespace}:{queue}.wake"


def moving_delayed() -> bool:
    """Whether this thread is a worker's delay-queue consumer (Dramatiq's consumer threads name
    their queue), which enqueues a delayed message on its queue when its time comes."""
    return str(getattr(threading.current_thread(), "queue_name", "")).endswith(".DQ")


def wait_for_message(client: redis.Redis, key: str, timeout_s: float) -> bool:
    """Block until a token is pushed on `key` or `timeout_s` passes; True when woken."""
    socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if socket_timeout:
        timeout_s = min(timeout_s, socket_timeout * SOCKET_TIMEOUT_SHARE)
    # BLPOP takes seconds with millisecond precision; 0 would mean "forever".
    return client.blpop([key], timeout=max(round(timeout_s, 3), 0.001)) is not None


class Slots:
    """Tells a consumer whose prefetch is full that settled messages made room."""

    def __init__(self) -> None:
        self._freed = threading.Event()

    def freed(self) -> None:
        self._freed.set()

    def wait(self, timeout_s: float) -> None:
        self._freed.wait(timeout_s)
        self._freed.clear()
