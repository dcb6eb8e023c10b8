"""The worker-host harness: the delay proxy adds its round trip and forwards bytes intact; hosts
are network namespaces reaching this machine only through their link (root only)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest
import redis

from ops import netns
from ops.local_redis import RedisServer


def _ping_ms(client: redis.Redis, count: int = 15) -> float:
    client.ping()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_delay_proxy_adds_its_round_trip_and_keeps_the_bytes(redis_server: RedisServer) -> None:
    # Given the test Redis behind a proxy adding 20 ms of round trip
    to = ("127.0.0.1", redis_server.port)
    with netns.DelayProxy(to=to, listen=["127.0.0.1"], rtt_ms=20) as proxy:
        client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=10)
        # Then every command pays at least the 20 ms, where a direct one pays far less
        assert _ping_ms(client) >= 20
        assert _ping_ms(redis_server.client) < 20
        # And a 1 MB value goes through both ways unchanged, in one pipelined batch
        value = os.urandom(1 << 20)
        key = f"netns-test:{os.getpid()}"
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value, ex=60)
        pipe.get(key)
        assert pipe.execute()[1] == value
        client.delete(key)


@pytest.mark.skipif(netns.reason() is not None, reason=f"worker hosts: {netns.reason()}")
@pytest.mark.soak  # the partition test in tests/reliability covers a cut link in `make test`
def test_a_host_reaches_redis_through_its_link_until_it_is_partitioned() -> None:
    with netns.hosts(1) as (host,):
        server = RedisServer(bind=("127.0.0.1", host.gateway))
        try:
            probe = (
                f"import redis; c = redis.Redis(host={host.gateway!r}, port={server.port}, "
                "socket_connect_timeout=3); print(c.ping())"
            )

            def ping_from_host() -> subprocess.CompletedProcess[str]:
                command = [*host.run, sys.executable, "-c", probe]
                return subprocess.run(command, capture_output=True, text=True, timeout=60)

            assert ping_from_host().stdout.strip() == "True"
            host.partition()
            cut = ping_from_host()
            # (a connect timeout, or "no route" once the kernel drops the link's carrier)
            assert cut.returncode != 0 and "redis.exceptions" in cut.stderr, cut.stderr[-500:]
            host.heal()
            assert ping_from_host().stdout.strip() == "True"
        finally:
            server.stop()
