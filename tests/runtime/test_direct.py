"""Scripts on a connection of the calling thread's own (runtime/direct.py), on a real Redis."""

from __future__ import annotations

import pytest
import redis

from runtime.direct import ThreadScripts


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_next_call(
    clean_redis: redis.Redis,
) -> None:
    # Given a thread's connection that has run a script (replacing closed ones, as the fetch's)
    scripts = ThreadScripts(clean_redis, replace_closed=True)
    script = clean_redis.register_script("return redis.call('INCR', KEYS[1])")
    assert scripts.run(script, ["direct:calls"], []) == 1
    # When the server closes it while it is idle (CLIENT KILL, as a restart or failover would)
    host, port = scripts._local.connection._sock.getsockname()
    address = f"{host}:{port}"
    assert clean_redis.client_kill_filter(addr=address) == 1
    # Then the next call goes through on a new connection, and ran once
    assert scripts.run(script, ["direct:calls"], []) == 2
    assert clean_redis.get("direct:calls") == b"2"
    clean_redis.delete("direct:calls")


def test_an_argument_redis_cannot_take_is_a_data_error(clean_redis: redis.Redis) -> None:
    scripts = ThreadScripts(clean_redis)
    script = clean_redis.register_script("return 1")
    with pytest.raises(redis.DataError):
        scripts.run(script, [], [None])
    assert scripts.run(script, [], ["fine"]) == 1
