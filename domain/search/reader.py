"""One process's search path: a few pooled read-only connections and a short-lived result cache.

The API builds one `Searcher` per process (`searcher_for`). Its connections are opened once and
kept (no connect, no pragma per request), and there are few of them: a burst of searches queues
for a connection instead of running all at once on a machine with fewer cores than clients.
Results are cached for `cache_s` seconds under the index watermark (`search_state.watermark`,
bumped in the transaction of every index commit): a popular query answers from memory, and an
indexed change is visible to the next search, whatever the cache holds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from domain.platform.db import make_read_engine
from domain.search.index import watermark
from domain.search.query import WINDOW, Request, answer

#: Results kept per process: 2-10 kB each (a page of titles and snippets, the facets), at
#: most ~40 kB (100 results): a few MB for the popular queries of an afternoon.
CACHE_ENTRIES = 256


class Searcher:
    """Searches on a bounded pool of read-only connections, cached under the index watermark."""

    def __init__(self, engine: Engine, *, connections: int, cache_s: float) -> None:
        self.writer = engine
        self.engine = make_read_engine(engine, connections=connections)
        self.cache_s = cache_s
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, float, dict[str, Any]]]
        self._cache = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        # Its own threads. SQLite searches in this process, under the GIL but for the steps
        # it releases it around: threads searching at once hand the GIL to and fro at every
        # row (hundreds of context switches a search, up to twice its CPU), so one thread
        # searches and the others queue. A server database works apart: one per connection.
        threads = 1 if engine.dialect.name == "sqlite" else connections
        self.thread_names = f"search-{id(self):x}"
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix=self.thread_names)

    def submit(self, request: Request, *, window: int = WINDOW) -> Future[dict[str, Any]]:
        """`search` on one of the searcher's threads."""
        return self._threads.submit(self.search, request, window=window)

    def search(self, request: Request, *, window: int = WINDOW) -> dict[str, Any]:
        """As `domain.search.search` for a checked `request` (`Request.of`); the same request
        under the same watermark within `cache_s` seconds gets the same answer without
        reading the index again."""
        key = (*request.key, window)
        with self.engine.connect() as connection:
            if self.cache_s <= 0:
                return answer(connection, request, window=window)
            # Read before the search: the answer is at least as new as the mark it is kept under.
            mark = watermark(connection)
            now = time.monotonic()
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None and cached[0] == mark and cached[1] > now:
                    self._cache.move_to_end(key)
                    self.hits += 1
                    return cached[2]
            result = answer(connection, request, window=window)
        with self._lock:
            self.misses += 1
            self._cache[key] = (mark, now + self.cache_s, result)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return result

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        if self.engine is not self.writer:
            self.engine.dispose()


@lru_cache(maxsize=8)
def searcher_for(engine: Engine, *, connections: int, cache_s: float) -> Searcher:
    """The process's searcher of `engine` (built on first use, then shared by every request)."""
    return Searcher(engine, connections=connections, cache_s=cache_s)
