"""Named clients' tokens in a web process: a small cache, dropped at once when a client changes.

A request's token is looked up by hash in the database on a cache miss. Every change of a client
(create, revoke, rotate) is announced on a Redis channel; each web process listens on it,
empties its cache and acknowledges, and the announcer waits for those acknowledgements: when a
revoke returns, no web process still accepts the token. While a process is not subscribed
(Redis away, reconnecting) it does not cache at all and reads the database on every request, so
a change it could not hear of cannot be missed. Last-use times are written in batches by the
listener thread (one UPDATE per client every LAST_USE_FLUSH_S), not per request.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.platform import clients

logger = logging.getLogger("gaveurs.clients")

CHANNEL = "gaveurs:clients:changed"
ACK_PREFIX = "gaveurs:clients:ack:"
#: Tokens one process remembers (least recently used dropped first).
CACHE_ENTRIES = 1024
LAST_USE_FLUSH_S = 30.0
#: How long an announcement waits for every listening web process to acknowledge.
ACK_TIMEOUT_S = 5.0
RETRY_S = 1.0


class ClientDirectory:
    """Token -> client for one web process (one per runtime; built lazily by api/deps.py)."""

    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        client: redis.Redis,
        entries: int = CACHE_ENTRIES,
        flush_s: float = LAST_USE_FLUSH_S,
    ) -> None:
        self.engine = engine
        self.client = client
        self.entries = entries
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, clients.Client] = OrderedDict()
        #: Bumped at every invalidation: a lookup that began before one does not cache its read.
        self._generation = 0
        self.subscribed = threading.Event()
        self._used: dict[int, datetime] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lookups ----------------------------------------------------------------------------

    def cached(self, digest: str) -> clients.Client | None:
        """The cached client for a token hash (no I/O), or None on a miss."""
        self._start()
        with self._lock:
            found = self._cache.get(digest)
            if found is not None:
                self._cache.move_to_end(digest)
            return found

    def lookup(self, token: str) -> clients.Client | None:
        """Read the database (a cache miss): the active client of this token, or None."""
        return self.lookup_hash(clients.hash_token(token))

    def lookup_hash(self, digest: str) -> clients.Client | None:
        """`lookup` by the token's hash."""
        self._start()
        with self._lock:
            generation = self._generation
        with Session(self.engine()) as session:
            found = clients.find_hash(session, digest)
        if found is not None and self.subscribed.is_set():
            with self._lock:
                if generation == self._generation:
                    self._cache[digest] = found
                    while len(self._cache) > self.entries:
                        self._cache.popitem(last=False)
        return found

    def active(self, digest: str) -> clients.Client | None:
        """The client of a token hash if still active (cache, else the database)."""
        found = self.cached(digest) or self.lookup_hash(digest)
        return None if found is None or found.expired() else found

    def used(self, client: clients.Client) -> None:
        if client.id is not None:
            with self._lock:
                self._used[client.id] = datetime.now(UTC)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()

    # -- the listener thread ----------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="client-directory", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush_last_use)

    def _listen(self) -> None:
        last_flush = time.monotonic()
        complained = False  # once per outage
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        complained = complained and message["type"] != "subscribe"
                        self._handle(message)
                    if time.monotonic() - last_flush >= self.flush_s:
                        last_flush = time.monotonic()
                        self.flush_last_use()
            except Exception as error:  # Redis away: no cache until subscribed again
                self.subscribed.clear()
                self.invalidate()
                if not complained:
                    complained = True
                    logger.warning("client changes not heard (%s); reading the database", error)
                self._stop.wait(RETRY_S)
            finally:
                self.subscribed.clear()
                pubsub.close()

    def _handle(self, message: dict[str, object]) -> None:
        if message["type"] == "subscribe":
            # Changes made before this moment were not heard: start from an empty cache.
            self.invalidate()
            self.subscribed.set()
        elif message["type"] == "message":
            self.invalidate()
            data = message["data"]
            reply = json.loads(data if isinstance(data, bytes | str) else b"{}").get("reply")
            if reply:
                self.client.rpush(reply, os.getpid())
                self.client.expire(reply, int(ACK_TIMEOUT_S) * 2)

    def flush_last_use(self) -> None:
        with self._lock:
            used, self._used = self._used, {}
        try:
            clients.record_last_use(self.engine(), used)
        except Exception as error:  # the database away: keep them for the next flush
            with self._lock:
                for client_id, when in used.items():
                    self._used.setdefault(client_id, when)
            logger.warning("last use of API clients not written: %s", error)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self.flush_last_use()


def announce(client: redis.Redis, name: str, *, timeout_s: float = ACK_TIMEOUT_S) -> int:
    """Tell every web process that client `name` changed; returns once each listening process
    dropped its cache (or after `timeout_s`). Returns how many acknowledged."""
    reply = ACK_PREFIX + uuid.uuid4().hex
    listeners = int(client.publish(CHANNEL, json.dumps({"client": name, "reply": reply})))
    acknowledged = 0
    deadline = time.monotonic() + timeout_s
    while acknowledged < listeners:
        if time.monotonic() >= deadline:
            break
        # One-second waits: a longer block would outlast the client's socket timeout.
        if client.blpop([reply], timeout=1) is not None:
            acknowledged += 1
    client.delete(reply)
    return acknowledged
