"""The job-record scripts run on every job, twice; this runs them on a connection of the calling
thread's own instead of through redis-py's pool.

Each pooled call checks the pid twice, takes the pool lock twice and records observability
counters, under the GIL every worker thread is waiting for: for a no-op job that was a sixth of
the worker's time. A thread-local connection built from the same pool settings (TLS, ACL user,
timeouts) does one send and one read (for the fetch, also a poll, as the pool does, that sees a
connection the server closed while it was idle). Errors are the same redis-py exceptions; a
connection that failed is dropped and the next call opens a new one (with Sentinel, to the master
they name now).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class ThreadScripts:
    def __init__(self, client: redis.Redis, *, replace_closed: bool = False) -> None:
        """`replace_closed`: before each call, poll the connection as redis-py's pool does and
        replace it when the server closed it while idle (the consumer's fetch: a CLIENT KILL or a
        restart must not fail its next fetch). Without it (record writes) such a call fails
        once, and the caller's retry (a worker) or its 503 (the API) answers for it."""
        self.pool = client.connection_pool
        self.replace_closed = replace_closed
        self._local = threading.local()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self.replace_closed and self._local.pid == os.getpid():
            try:
                # As redis-py's pool checks before each use: an idle connection with something to
                # read was closed by the server (a CLIENT KILL, a restart): open a new one.
                if not connection.can_read():
                    return connection
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass
            connection.disconnect()
            connection = None
        if connection is None or self._local.pid != os.getpid():
            connection = self.pool.connection_class(**self.pool.connection_kwargs)
            # Through the class's connect(): a Sentinel-managed connection asks where the master
            # is there (send_command alone would dial redis-py's default localhost:6379).
            connection.connect()
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        connection = self._connection()
        try:
            try:
                return self._evalsha(connection, script, keys, args)
            except NoScriptError:
                connection.send_command("SCRIPT", "LOAD", script.script)
                script.sha = connection.read_response().decode()
                return self._evalsha(connection, script, keys, args)
        except redis.ResponseError:
            raise  # an error reply: the connection is in step
        except BaseException:
            # Connection errors, and anything raised into the thread mid-call (a cancel, a time
            # limit): a reply may still be on its way, which the next call would read as its own.
            connection.disconnect()
            self._local.connection = None
            raise

    @staticmethod
    def _evalsha(connection: Any, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        # Packed by hiredis (C) in one call: redis-py's packer first walks every argument in
        # Python, ~50 of them per job in the record writes.
        try:
            packed = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        except TypeError as error:  # an argument Redis cannot take (None, say), as redis-py says
            raise redis.DataError(str(error)) from None
        connection.send_packed_command([packed])
        return connection.read_response()
