"""Results made quiet (runtime/middleware/results.py): the same results stored, fewer calls."""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from dramatiq.worker import has_results_middleware

from runtime.middleware.results import quiet_results


def test_quiet_results_stores_what_its_jobs_ask_for_and_nothing_else(
    clean_redis: redis.Redis,
) -> None:
    # Given a broker whose Results is made quiet, on a real Redis, and a worker
    backend = RedisBackend(client=clean_redis)
    broker = StubBroker(middleware=[quiet_results(Results(backend=backend))])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, store_results=True)
    def stored(n: int) -> int:
        return n * 2

    @dramatiq.actor(broker=broker)
    def discarded(n: int) -> int:
        return n * 3

    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        # When one job of each runs, and one of the discarding actor asks to store by message
        kept = stored.send(21)
        dropped = discarded.send(1)
        asked = discarded.send_with_options(args=(5,), store_results=True)
        broker.join(discarded.queue_name)
        worker.join()
        # Then the first and the third are stored, the second is not
        assert kept.get_result(backend=backend, block=True, timeout=5000) == 42
        assert asked.get_result(backend=backend, block=True, timeout=5000) == 15
        assert not clean_redis.exists(backend.build_message_key(dropped))
    finally:
        worker.stop()
    # and Dramatiq's worker still sees its Results (otherwise it warns on every returned value)
    assert has_results_middleware(broker)
