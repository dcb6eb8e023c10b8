"""A thin keep-alive HTTP/1.1 GET client for load generators that share the server's cores.

httpx costs ~1.2-1.4 ms of CPU per request in the search benchmark, about twice what the API
spends on a `/healthz`: on 2 cores that is CPU taken from the server being measured. This one
writes the request line, reads the head up to its blank line and then `Content-Length` bytes:
~0.1 ms per request. Only what our API answers is understood (a length, no chunked body); an
answer it cannot read is an error, never a guess.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode, urlsplit

_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class KeepAlive:
    """One connection to `base` (http://host:port), reused by every `get`."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"KeepAlive needs http://host:port, not {base!r}")
        self.host, self.port = parts.hostname, parts.port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of GET `path` with `params` in its query string."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        target = f"{path}?{urlencode(params)}" if params else path
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = _LENGTH.search(head)
        if not head.startswith(b"HTTP/1.1 ") or length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await reader.readexactly(int(length.group(1)))

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            writer.close()
            await writer.wait_closed()
            self._streams = None
