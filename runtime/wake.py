"""A consumer whose prefetch is full waits for a settled message, not for its whole backoff.

With every prefetched message handed out or running, Dramatiq's consumer sleeps its backoff
(2.5-5 ms, twice as long after each turn without a fetch) before looking again, while worker
threads that finish meanwhile sit idle. Here settling a message that brings the consumer down
to half its prefetch wakes it at once, so it fetches a half batch (`RobustConsumer._settle`).

(Waking idle consumers on enqueue instead of polling was tried for issue 15, with a token the
enqueue script pushed and a blocking pop: the pickup got faster, but the job then ran alongside
the API's answer on the same cores, and the end-to-end latency did not improve. See README,
Benchmarks.)
"""

from __future__ import annotations

import threading


class Slots:
    """Tells a consumer whose prefetch is full that settled messages made room."""

    def __init__(self) -> None:
        self._freed = threading.Event()

    def freed(self) -> None:
        self._freed.set()

    def wait(self, timeout_s: float) -> None:
        self._freed.wait(timeout_s)
        self._freed.clear()
