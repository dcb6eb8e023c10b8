"""The API loop's pipelined Redis connection (runtime/async_enqueue.py, LoopScripts) on a real
Redis: concurrent commands share writes and each gets its own answer, a script's error stays
its own, a lost connection fails what it owed and the next command reconnects."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio

from ops.local_redis import RedisServer
from runtime.async_enqueue import LoopScripts

ECHO = "return ARGV[1]"
FAIL = "return redis.error_reply('refused: ' .. ARGV[1])"


def _scripts(url: str, timeout_s: float = 5.0) -> tuple[LoopScripts, redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(url)
    return LoopScripts(client, timeout_s=timeout_s), client


def test_concurrent_commands_get_their_own_answers_in_one_connection(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        scripts, client = _scripts(redis_server.url)
        echo, fail = client.register_script(ECHO), client.register_script(FAIL)
        await client.script_flush()  # the first EVALSHA meets NOSCRIPT and loads it
        before = {entry["id"] for entry in await client.client_list()}
        # When 200 commands are issued at once, one of them a script that errs
        calls: list[Any] = [scripts.run(echo, [], [str(n)], what="echo") for n in range(200)]
        calls.insert(100, scripts.run(fail, [], ["x"], what="fail"))
        answers = await asyncio.gather(*calls, return_exceptions=True)
        # Then each has its answer, the error only the failing one's
        assert answers[:100] + answers[101:] == [str(n).encode() for n in range(200)]
        assert isinstance(answers[100], redis.ResponseError) and "refused: x" in str(answers[100])
        # and they went through one new connection
        opened = [e for e in await client.client_list() if e["id"] not in before]
        assert [entry["cmd"] for entry in opened] == ["evalsha"]
        await client.aclose()

    asyncio.run(scenario())


def test_a_lost_connection_fails_what_it_owed_and_the_next_command_reconnects(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        scripts, client = _scripts(redis_server.url)
        assert await scripts.call("SET", "loop-scripts:k", "v") == b"OK"
        # Given a command waiting on the connection (BLPOP answers only when pushed to)
        waiting = asyncio.ensure_future(scripts.call("BLPOP", "loop-scripts:empty", 0))
        await asyncio.sleep(0.1)
        # When Redis closes that connection (only that one: the session's Redis serves other
        # clients' pooled connections, which a wider kill would break for the next tests)
        blocked = [e["id"] for e in await client.client_list() if e["cmd"] == "blpop"]
        assert len(blocked) == 1, blocked
        assert await client.client_kill_filter(_id=blocked[0]) == 1
        # Then the waiting command fails as a connection loss, and the next one reconnects
        with pytest.raises(redis.ConnectionError):
            await waiting
        assert await scripts.call("GET", "loop-scripts:k") == b"v"
        await client.delete("loop-scripts:k")
        await client.aclose()

    asyncio.run(scenario())


def test_a_stalled_redis_fails_what_the_connection_owed_at_the_oldest_deadline() -> None:
    server = RedisServer()
    try:

        async def scenario() -> None:
            scripts, client = _scripts(server.url, timeout_s=0.3)
            assert await scripts.call("PING") == b"PONG"
            server.pause()
            try:
                loop = asyncio.get_running_loop()
                started = loop.time()
                first = asyncio.ensure_future(scripts.call("PING", what="the first ping"))
                await asyncio.sleep(0.1)
                later = [asyncio.ensure_future(scripts.call("PING")) for _ in range(3)]
                answers = await asyncio.gather(first, *later, return_exceptions=True)
                waited = loop.time() - started
                # Every one fails when the oldest is due, naming it; none waits longer
                assert all(isinstance(answer, redis.TimeoutError) for answer in answers)
                assert "the first ping within 0.3 s" in str(answers[0])
                assert 0.3 <= waited < 1.0, waited  # not one bound after another (1.2 s)
                # and the next command, on a new connection to the same stalled Redis, too
                started = loop.time()
                (again,) = await asyncio.gather(scripts.call("PING"), return_exceptions=True)
                assert isinstance(again, redis.TimeoutError), again
                assert loop.time() - started < 1.0
            finally:
                server.resume()
            assert await scripts.call("PING") == b"PONG"
            await client.aclose()

        asyncio.run(scenario())
    finally:
        server.resume()
        server.stop()


def test_an_answer_that_came_while_the_event_loop_was_held_up_is_read(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        scripts, client = _scripts(redis_server.url, timeout_s=0.3)
        assert await scripts.call("PING") == b"PONG"
        for _ in range(3):
            # Given a command written to Redis
            asked = asyncio.ensure_future(scripts.call("PING", what="a ping"))
            while not _written(scripts):
                await asyncio.sleep(0)
            # When the event loop is held up past its deadline (a long synchronous call, a
            # starved process) while Redis answers
            time.sleep(0.6)
            # Then the answer is read: Redis answered in time, the loop was late
            assert await asked == b"PONG"
        await client.aclose()

    asyncio.run(scenario())


def _written(scripts: LoopScripts) -> bool:
    pipe = scripts._pipe
    return pipe is not None and bool(pipe.waiting) and not pipe.outgoing and not pipe._writing
